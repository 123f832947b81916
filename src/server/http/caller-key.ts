import type { FastifyRequest } from 'fastify';

/**
 * Whom every per-caller limit (the request rate, open event streams, waiting blocking queries)
 * counts against: a token from one address, or the address alone when no valid token was
 * presented. The address is part of it because a swarm often hands every VM the same token:
 * keyed by token alone, one runaway VM would spend the budget of all of them.
 */
export const callerKey = (request: FastifyRequest) =>
  request.principal ? `token "${request.principal.name}" from ${request.ip}` : `address ${request.ip}`;
