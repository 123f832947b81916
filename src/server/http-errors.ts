import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance } from 'fastify';
import { RegistryError } from '../domain/errors.js';
import { trimBodyStrings } from '../domain/schemas.js';
import { describeValidationError } from './validation-errors.js';

/** A client-side failure raised while reading the request, before any route runs. */
export class BadRequestError extends RegistryError {
  constructor(message: string, statusCode = 400) {
    super(statusCode, message);
  }
}

/**
 * Every failure leaves as `{"error": "…"}`. Client mistakes keep their 4xx and a message
 * naming the problem; anything else is logged in full and answered with a bare 500 that
 * carries the request id, never a stack, SQL or a file path.
 */
export function installErrorHandling(app: FastifyInstance, bodyLimit: number): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      return reply.code(400).send({ error: describeValidationError(error.validationContext ?? 'body', error.validation) });
    }
    if (error instanceof RegistryError) {
      // One line, no stack: during a database outage every request lands here.
      if (error.statusCode >= 500) request.log.warn({ error: error.message }, 'store unavailable');
      return reply.code(error.statusCode).send({ error: error.message });
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const limit = request.routeOptions.bodyLimit ?? bodyLimit;
      return reply.code(413).send({ error: `request body is larger than the limit of ${limit} bytes` });
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) return reply.code(status).send({ error: error.message });
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send({ error: `internal error (request id ${request.id})` });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: `no route for ${request.method} ${request.url.split('?')[0]}` }),
  );
}

const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout'],
};

/**
 * Requests Node's HTTP parser rejects (bad header bytes, oversized headers, too slow) never
 * reach Fastify; they still get the JSON error shape every other answer has.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  // Bytes after a request that said "Connection: close": that request is still being
  // answered, and the connection closes after it; an error written now would overtake it.
  if (error.code === 'HPE_CLOSED_CONNECTION') return;
  const [status, reason] = CLIENT_ERRORS[error.code ?? ''] ?? [400, 'Bad Request'];
  const body = JSON.stringify({ error: `malformed HTTP request (${error.code ?? 'unreadable'})` });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/**
 * Reads every body as JSON whatever its Content-Type claims: `curl -d` sends form
 * encoding for what is plainly JSON. An empty body is no body, so that bodiless POSTs
 * from clients that always send `Content-Type: application/json` still work. Its strings
 * are trimmed here, before any route checks them (trimBodyStrings).
 */
export function installJsonBodyParser(app: FastifyInstance, bodyLimit: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (_request, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, trimBodyStrings(JSON.parse(text)));
    } catch (error) {
      done(new BadRequestError(`request body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
}
