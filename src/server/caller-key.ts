import type { FastifyRequest } from 'fastify';

/** Whom per-caller limits count against: the token's name, or the address of an anonymous caller. */
export const callerKey = (request: FastifyRequest) =>
  request.principal ? `token "${request.principal.name}"` : `address ${request.ip}`;
