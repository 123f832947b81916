import type { FastifyInstance } from 'fastify';
import { UnavailableError } from '../../domain/errors.js';
import { describeSchemaViolation } from '../../domain/schema-messages.js';
import { isRevisionText, MIN_INDEX_HEADER, REVISION_PATTERN } from '../../domain/schemas/query.js';
import type { ChangeFeed } from '../feed/change-feed.js';
import { BadRequestError } from './errors.js';

/** How long such a read waits for it, at most: a replica trails another by the notify lag, milliseconds when all is well. */
export const MIN_INDEX_WAIT_MS = 10_000;

/**
 * `X-Registry-Min-Index: R` on a GET: answer only from a registry at revision R or later. A
 * client that wrote on one replica (its answer's ETag or X-Registry-Index is R) and reads on
 * another gets its own write, or a 503 if this replica does not reach R within the bound.
 * The feed's revision is the one reads reflect: it never runs ahead of the store's.
 */
export function honourMinIndex(app: FastifyInstance, feed: ChangeFeed): void {
  // Synchronous unless the header asks for a revision not yet reached: no promise per request.
  app.addHook('preHandler', (request, reply, done) => {
    const header = request.headers[MIN_INDEX_HEADER];
    if (header === undefined || request.method !== 'GET') return done();
    // The reads that declare ReadHeadersSchema were refused by its validation already, in the same words.
    if (typeof header !== 'string' || !isRevisionText(header)) {
      const violation = { keyword: 'pattern', instancePath: `/${MIN_INDEX_HEADER}`, params: { pattern: REVISION_PATTERN } };
      return done(new BadRequestError(describeSchemaViolation('headers', violation)));
    }
    const revision = Number(header);
    if (feed.revision >= revision) return done();
    const left = new AbortController();
    reply.raw.once('close', () => left.abort());
    void feed.waitForRevisionAfter(revision - 1, MIN_INDEX_WAIT_MS, left.signal).then(() =>
      done(
        feed.revision >= revision
          ? undefined
          : new UnavailableError(
              `this server has not reached revision ${revision} (X-Registry-Min-Index) within ${MIN_INDEX_WAIT_MS / 1000}s; it is at ${feed.revision}. Retry shortly`,
            ),
      ),
    );
  });
}
