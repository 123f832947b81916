import { RegistryError } from '../domain/errors.js';

/**
 * The server answered with an error. The same class the server throws, so `statusCode`
 * is the HTTP status and `message` the server's own `{"error": "…"}` text.
 */
export { RegistryError };

/** No answer at all: connection refused, DNS failure, timeout, or a stream cut mid-way. */
export class RegistryUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RegistryUnreachableError';
  }
}

/** The client cannot be built: no registry URL, or one that is not a URL. */
export class RegistryConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryConfigError';
  }
}

/** Worth trying again later: the registry may come back. Client mistakes (4xx) are not. */
export function isTransient(error: unknown): boolean {
  if (error instanceof RegistryUnreachableError) return true;
  return error instanceof RegistryError && (error.statusCode >= 500 || error.statusCode === 429);
}
