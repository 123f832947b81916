import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ErrorSchema } from '../../domain/schemas/error.js';
import { EventsQuerySchema } from '../../domain/schemas/events.js';
import { isRevisionText } from '../../domain/schemas/query.js';
import type { RegistryStore } from '../../store/store.js';
import type { ChangeFeed } from '../feed/change-feed.js';
import { EventStream } from '../feed/event-stream.js';
import { CallerQuota } from '../http/caller-quota.js';
import { BadRequestError } from '../http/errors.js';

export interface EventRoutesOptions {
  store: RegistryStore;
  feed: ChangeFeed;
  /** How often an idle stream gets a comment line, so that proxies keep it open. */
  keepAliveMs: number;
  /** Open streams one caller may hold; a runaway watcher loop must not exhaust the server. */
  maxWatchers: number;
}

function resumeFrom(since: string | undefined, lastEventId: string | string[] | undefined): number | undefined {
  if (lastEventId !== undefined) {
    const value = String(lastEventId).trim();
    if (!isRevisionText(value)) {
      throw new BadRequestError(`Last-Event-ID must be a revision number as sent in "id:" lines (got ${JSON.stringify(value)})`);
    }
    return Number(value);
  }
  return since === undefined ? undefined : Number(since);
}

/** What a watcher reads: one change, then a keep-alive comment. */
const STREAM_EXAMPLE =
  'id: 318\nevent: registered\ndata: {"type":"registered","revision":318,"at":"2026-11-27T12:00:00.000Z","vm":' +
  '{"id":"vm-lt-01","name":"billing-lt","role":"lieutenant","status":"running","address":"vm-lt-01.vm.vers.sh",' +
  '"registeredBy":"orchestrator","registeredAt":"2026-11-27T12:00:00.000Z","lastSeen":"2026-11-27T12:00:00.000Z","stale":false}}\n\n' +
  ': keep-alive\n\n';

/**
 * GET /registry/events: the change feed as Server-Sent Events. Resume with Last-Event-ID
 * (what EventSource sends by itself) or ?since=; filter with ?role= and ?id=.
 */
export const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (app, { store, feed, keepAliveMs, maxWatchers }) => {
  const streams = new Set<EventStream>();
  const quota = new CallerQuota(maxWatchers);
  const keepAlive = setInterval(() => {
    for (const stream of streams) stream.comment('keep-alive');
  }, keepAliveMs);
  keepAlive.unref();
  // Open streams would hold a graceful shutdown forever: end them first; clients resume elsewhere.
  app.addHook('preClose', async () => {
    clearInterval(keepAlive);
    for (const stream of streams) stream.end();
  });

  app.get(
    '/events',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Watch changes as Server-Sent Events',
        description:
          'Each change is an event with `id:` its revision, `event:` its type and `data:` {type, revision, at, vm}. ' +
          'An event `reset` with data {type: "reset", revision} and no `id:` says the server lost its place in the ' +
          'event log and changes were missed: list again; the stream goes on after that revision.',
        querystring: EventsQuerySchema,
        response: {
          200: {
            description: 'The stream: "id:" the revision, "event:" the type, "data:" {type, revision, at, vm}.',
            content: { 'text/event-stream': { schema: Type.String({ examples: [STREAM_EXAMPLE] }) } },
          },
          410: { ...ErrorSchema, description: 'The revision to resume from is no longer (or not yet) in the event log: list again, then watch.' },
          429: { ...ErrorSchema, description: 'The caller already holds REGISTRY_MAX_WATCHERS open event streams.' },
        },
      },
    },
    async (request, reply) => {
      const since = resumeFrom(request.query.since, request.headers['last-event-id']);
      const release = quota.hold(
        reply,
        (caller, limit) => `${caller} already holds ${limit} open event streams, the most allowed (REGISTRY_MAX_WATCHERS); close some first`,
      );
      let opened;
      try {
        opened = await EventStream.open(store, feed, {
          since,
          filter: { role: request.query.role, id: request.query.id },
          onEnd: (ended) => {
            streams.delete(ended);
            release();
          },
        });
      } catch (error) {
        release();
        throw error;
      }
      const { stream, backlog } = opened;
      streams.add(stream);
      reply.hijack();
      await stream.attach(reply.raw, store, backlog);
    },
  );
};
