import type { FastifyInstance, FastifyRequest } from 'fastify';
import { allows, type Principal, type Scope, type TokenRegistry } from './tokens.js';

/** Why a request is refused entry: decided in onRequest, answered in preParsing (see addAuthorization). */
interface Refusal {
  status: 401 | 403;
  error: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's token, once identified (a refused caller's too); undefined when auth is off or the token unknown. */
    principal?: Principal;
    refusal?: Refusal;
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
 * Admits only callers whose token carries the route's scope: 401 for a missing or unknown
 * token, 403 for a known one without the scope. With no token configured at all the registry
 * is open and everyone is admitted. The caller is identified in onRequest and a refusal is
 * answered only in preParsing, so that the per-caller rate limit (its hooks sit on each route,
 * between the two) counts refused requests too: a client looping on a wrong token is slowed by
 * 429s with Retry-After like any other, instead of being answered as fast as it can ask. Both
 * hooks are synchronous (done callbacks, not promises): they run on every request.
 */
export function addAuthorization(app: FastifyInstance, tokens: TokenRegistry): void {
  if (!tokens.enabled) return;
  app.addHook('onRequest', (request, _reply, done) => {
    const secret = bearerSecret(request.headers.authorization);
    const principal = secret === undefined ? undefined : tokens.identify(secret);
    if (!principal) {
      request.refusal = {
        status: 401,
        error: secret === undefined ? 'authentication required: send "Authorization: Bearer <token>"' : 'the bearer token is not valid',
      };
      return done();
    }
    // Counted against its own budget even when refused.
    request.principal = principal;
    const scope = request.routeOptions.config.scope ?? 'admin';
    if (scope !== 'any' && !allows(principal, scope)) {
      request.refusal = { status: 403, error: `token "${principal.name}" lacks the "${scope}" scope this request needs` };
    }
    done();
  });
  app.addHook('preParsing', (request, reply, _payload, done) => {
    const refusal = request.refusal;
    if (refusal === undefined) return done();
    if (refusal.status === 401) reply.header('www-authenticate', 'Bearer realm="vm-registry"');
    // Sent without calling done, which ends the request here.
    reply.code(refusal.status).send({ error: refusal.error });
  });
}

/**
 * The owner a write must be restricted to: a write-scoped token may only touch the VMs it
 * registered; admin tokens, and everyone on an open registry, may touch any.
 */
export function ownerRestriction(request: FastifyRequest): string | undefined {
  const principal = request.principal;
  return principal && !principal.scopes.has('admin') ? principal.name : undefined;
}
