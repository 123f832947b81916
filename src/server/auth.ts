import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

const digest = (secret: string) => createHash('sha256').update(secret).digest();

/** The bearer secret of an Authorization header; the scheme is case-insensitive (RFC 7235). */
export function bearerSecret(header: string | undefined): string | undefined {
  const match = header && /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match ? match[1] : undefined;
}

/**
 * An onRequest hook admitting only requests that carry the token. Both sides are hashed
 * first so that the comparison takes the same time whatever the length of the guess.
 */
export function requireBearerToken(token: string) {
  const expected = digest(token);
  return async function checkBearerToken(request: FastifyRequest, reply: FastifyReply) {
    const secret = bearerSecret(request.headers.authorization);
    if (secret !== undefined && timingSafeEqual(digest(secret), expected)) return;
    reply.header('www-authenticate', 'Bearer realm="vm-registry"');
    return reply.code(401).send({
      error:
        secret === undefined
          ? 'authentication required: send "Authorization: Bearer <token>"'
          : 'the bearer token is not valid',
    });
  };
}
