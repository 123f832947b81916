import { parseDuration } from '../../domain/duration.js';
import { LIMITS } from '../../domain/schemas/vm.js';
import type { FastifyReply } from 'fastify';
import type { JsonListing, ListFilter } from '../../store/store.js';
import type { ChangeFeed } from '../feed/change-feed.js';
import type { CallerQuota } from './caller-quota.js';
import { BadRequestError } from './errors.js';

/** Counts blocking queries woken by a change, and those whose answer then had nothing new. */
export interface WakeupCounter {
  woken(): void;
  unchanged(): void;
}

export interface BlockingQueries {
  feed: ChangeFeed;
  waiting: CallerQuota;
  wakeups?: WakeupCounter;
}

/**
 * Whether an answer differs from the one at the client's index, from the VMs the changes since
 * were about: one that was in the result then has left it or changed, and one that is in it now
 * has entered or changed. Only VMs that entered and left again in between leave it as it was.
 */
function hasNews(answer: JsonListing, touched: ReadonlyMap<string, boolean>): boolean {
  for (const wasIn of touched.values()) if (wasIn) return true;
  return answer.ids.some((id) => touched.has(id));
}

/**
 * A list or discover, held while `index` is given until a change after it concerns `filter`
 * (a VM entering, leaving or changing inside the result), or until the wait is over, then read.
 * A change that turns out to leave the answer as the client saw it (a VM that came and went
 * again before the read) sends the query back to wait for the rest of its time. An index ahead
 * of the registry (a client that saw another timeline, such as a restored backup) answers at
 * once. A caller already holding as many waiting queries as `waiting` allows is answered 429.
 */
export async function blockingAnswer<A extends JsonListing>(
  { feed, waiting, wakeups }: BlockingQueries,
  query: { index?: string; wait?: string },
  reply: FastifyReply,
  filter: ListFilter,
  read: () => Promise<A>,
  currentRevision: () => Promise<number>,
): Promise<A> {
  if (query.index === undefined) {
    if (query.wait !== undefined) throw new BadRequestError('query parameter wait needs index: ?index=<revision>&wait=30s');
    return read();
  }
  let after = Number(query.index);
  let waitMs: number = LIMITS.defaultWaitMs;
  if (query.wait !== undefined) {
    const parsed = parseDuration(query.wait);
    if (parsed === undefined) {
      throw new BadRequestError(`query parameter wait must be a duration such as 30s, 5m or 1500ms (got ${JSON.stringify(query.wait)})`);
    }
    waitMs = Math.min(parsed, LIMITS.maxWaitMs);
  }
  if (after >= (await currentRevision()) + 1) return read();
  const release = waiting.hold(
    reply,
    (caller, limit) => `${caller} already has ${limit} blocking queries waiting, the most allowed (REGISTRY_MAX_WATCHERS); let some answer first`,
  );
  const left = new AbortController();
  reply.raw.once('close', () => left.abort());
  const deadline = Date.now() + waitMs;
  try {
    for (;;) {
      const end = await feed.waitForChange(after, filter, Math.max(0, deadline - Date.now()), left.signal);
      const answer = await read();
      if (end.reason === 'reset') wakeups?.woken();
      if (end.reason !== 'changed') return answer;
      wakeups?.woken();
      if (hasNews(answer, end.touched)) return answer;
      wakeups?.unchanged();
      if (left.signal.aborted || Date.now() >= deadline) return answer;
      after = answer.revision;
    }
  } finally {
    release();
  }
}
