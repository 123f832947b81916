import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { allows, type Principal, type Scope, type TokenRegistry } from './tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's token, once authorize admitted it; undefined when auth is off. */
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** What a route needs: a scope, or "any" valid token. Routes that say nothing need admin. */
    scope?: Scope | 'any';
  }
}

/** The bearer secret of an Authorization header; the scheme is case-insensitive (RFC 7235). */
export function bearerSecret(header: string | undefined): string | undefined {
  const match = header && /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match ? match[1] : undefined;
}

/**
 * An onRequest hook admitting only callers whose token carries the route's scope: 401 for
 * a missing or unknown token, 403 for a known one without the scope. With no token
 * configured at all the registry is open and everyone is admitted. Synchronous (a done
 * callback, not a promise): it runs on every request. A refusal is sent without calling
 * done, which ends the request there.
 */
export function authorize(tokens: TokenRegistry) {
  return function checkToken(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    if (!tokens.enabled) return done();
    const secret = bearerSecret(request.headers.authorization);
    const principal = secret === undefined ? undefined : tokens.identify(secret);
    if (!principal) {
      reply.header('www-authenticate', 'Bearer realm="vm-registry"');
      reply.code(401).send({
        error:
          secret === undefined
            ? 'authentication required: send "Authorization: Bearer <token>"'
            : 'the bearer token is not valid',
      });
      return;
    }
    const scope = request.routeOptions.config.scope ?? 'admin';
    if (scope !== 'any' && !allows(principal, scope)) {
      reply.code(403).send({ error: `token "${principal.name}" lacks the "${scope}" scope this request needs` });
      return;
    }
    request.principal = principal;
    done();
  };
}

/**
 * The owner a write must be restricted to: a write-scoped token may only touch the VMs it
 * registered; admin tokens, and everyone on an open registry, may touch any.
 */
export function ownerRestriction(request: FastifyRequest): string | undefined {
  const principal = request.principal;
  return principal && !principal.scopes.has('admin') ? principal.name : undefined;
}
