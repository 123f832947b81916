import { Type } from '@sinclair/typebox';
import { parseDuration } from '../../domain/duration.js';
import { LIMITS } from '../../domain/schemas.js';
import type { FastifyReply } from 'fastify';
import type { ChangeFeed } from '../feed/change-feed.js';
import type { CallerQuota } from './caller-quota.js';
import { BadRequestError } from './errors.js';

export const REVISION_PATTERN = '^\\d{1,15}$';
export const RevisionSchema = Type.String({ pattern: REVISION_PATTERN, description: 'A registry revision.' });


/** `?index=N&wait=30s`: the Consul-style blocking query parameters of list and discover. */
export const BlockingQuerySchema = {
  index: Type.Optional(Type.String({ pattern: REVISION_PATTERN, description: 'Answer once the registry revision exceeds this.' })),
  wait: Type.Optional(Type.String({ description: 'Longest wait, such as 30s or 5m (default 60s, at most 10m).' })),
};

/**
 * Holds a list or discover until the registry moves past `index`, or until the wait is
 * over, then lets the handler answer as usual. An index ahead of the registry (a client
 * that saw another timeline, such as a restored backup) answers at once. A caller already
 * holding as many waiting queries as `waiting` allows is answered 429.
 */
export async function waitForIndex(
  { feed, waiting }: { feed: ChangeFeed; waiting: CallerQuota },
  query: { index?: string; wait?: string },
  reply: FastifyReply,
  currentRevision: () => Promise<number>,
): Promise<void> {
  if (query.index === undefined) {
    if (query.wait !== undefined) throw new BadRequestError('query parameter wait needs index: ?index=<revision>&wait=30s');
    return;
  }
  const index = Number(query.index);
  let waitMs: number = LIMITS.defaultWaitMs;
  if (query.wait !== undefined) {
    const parsed = parseDuration(query.wait);
    if (parsed === undefined) {
      throw new BadRequestError(`query parameter wait must be a duration such as 30s, 5m or 1500ms (got ${JSON.stringify(query.wait)})`);
    }
    waitMs = Math.min(parsed, LIMITS.maxWaitMs);
  }
  if (index >= (await currentRevision()) + 1) return;
  const release = waiting.hold(
    reply,
    (caller, limit) => `${caller} already has ${limit} blocking queries waiting, the most allowed (REGISTRY_MAX_WATCHERS); let some answer first`,
  );
  const left = new AbortController();
  reply.raw.once('close', () => left.abort());
  try {
    await feed.waitForRevisionAfter(index, waitMs, left.signal);
  } finally {
    release();
  }
}
