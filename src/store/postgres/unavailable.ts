import { RegistryError, UnavailableError } from '../../domain/errors.js';

// SQLSTATE classes and codes that mean "the database cannot serve us now", not "the query is wrong":
// connection exceptions, too many connections, and a server shutting down, crashed or starting.
const UNAVAILABLE_SQLSTATE = /^(08|53300|57P0[1-3])/;
// What node-postgres throws when it has no connection to speak of: sockets refused, reset or
// timed out, and its own messages for a connection lost mid-query or never made.
const UNAVAILABLE_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|not queryable|Connection ended/i;

export function isUnavailable(error: unknown): boolean {
  // The store's own answers (not found, conflict, …) are never about the connection.
  if (!(error instanceof Error) || error instanceof RegistryError) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || /^E[A-Z]+$/.test(code))) return true;
  return UNAVAILABLE_MESSAGE.test(error.message);
}

/**
 * Turns a lost or refused database into the 503 a client can retry, with a message an
 * operator recognises; every other error passes through unchanged.
 */
export function unavailableOr(error: unknown): unknown {
  if (!isUnavailable(error)) return error;
  // A refused connection to a name with several addresses is an AggregateError with no message.
  const reason = (error as Error).message || String((error as { code?: unknown }).code);
  return new UnavailableError(`the registry's PostgreSQL database is unavailable (${reason}); retry shortly`);
}
