import type { FastifyReply } from 'fastify';
import { RegistryError } from '../../domain/errors.js';
import { callerKey } from './caller-key.js';

/**
 * How many long-held requests (open event streams, waiting blocking queries) each caller
 * has, against a limit, so that one caller cannot hold every socket and timer of the server.
 */
export class CallerQuota {
  private readonly held = new Map<string, number>();

  constructor(readonly limit: number) {}

  /**
   * Takes one for the request's caller and answers how to give it back (once). At the limit it
   * answers 429 with Retry-After instead, saying `refusal(caller, limit)`.
   */
  hold(reply: FastifyReply, refusal: (caller: string, limit: number) => string): () => void {
    const caller = callerKey(reply.request);
    const holding = this.held.get(caller) ?? 0;
    if (holding >= this.limit) {
      reply.header('retry-after', '5');
      throw new RegistryError(429, refusal(caller, this.limit));
    }
    this.held.set(caller, holding + 1);
    let returned = false;
    return () => {
      if (returned) return;
      returned = true;
      const left = (this.held.get(caller) ?? 1) - 1;
      if (left <= 0) this.held.delete(caller);
      else this.held.set(caller, left);
    };
  }
}
