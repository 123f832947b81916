import { maxHeaderSize } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import FindMyWay from 'find-my-way';
import { RegistryError } from '../../domain/errors.js';
import { trimBodyStrings } from '../../domain/schemas.js';
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
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      const type = JSON.stringify(request.headers['content-type']);
      return reply
        .code(415)
        .send({ error: `Content-Type ${type} is not a media type; send the body as JSON, with Content-Type application/json or none` });
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) return reply.code(status).send({ error: error.message });
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send({ error: `internal error (request id ${request.id})` });
  });

  // Fastify's router answers only "no route" for a path it serves with other methods: a copy
  // of the route table tells those apart, so that they are answered 405 with Allow.
  const served = FindMyWay({ maxParamLength: MAX_PARAM_LENGTH });
  const methods = new Set<FindMyWay.HTTPMethod>();
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat() as FindMyWay.HTTPMethod[]) {
      methods.add(method);
      served.on(method, route.url, () => undefined);
    }
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    const allowed = [...methods].filter((method) => served.find(method, path)).sort();
    if (allowed.length === 0) return reply.code(404).send({ error: `no route for ${request.method} ${path}` });
    return reply
      .code(405)
      .header('allow', allowed.join(', '))
      .send({ error: `${path} does not answer ${request.method}; it answers ${allowed.join(', ')}` });
  });
}

/**
 * Longer than any request line Node reads, so that no path parameter is refused by the router
 * for its length: an over-long id reaches validation, whose answer names the id's own limit.
 */
export const MAX_PARAM_LENGTH = maxHeaderSize;

/** Requests the router refuses before any route runs: a path whose %-escapes do not decode. */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const message =
    error.code === 'FST_ERR_BAD_URL' ? `the URL path ${JSON.stringify(request.url.split('?')[0])} holds a malformed %-escape` : error.message;
  void reply.code(error.statusCode ?? 400).send({ error: message });
}

/**
 * Requests Node's HTTP parser rejects (bad header bytes, oversized headers, too slow) never
 * reach Fastify; they still get the JSON error shape every other answer has, and those
 * refused for a limit say which.
 */
export function clientErrorAnswerer(timeouts: { headersMs: number; requestMs: number }) {
  const seconds = (ms: number) => `${ms / 1000} s`;
  const answers: Record<string, [number, string, string]> = {
    HPE_HEADER_OVERFLOW: [
      431,
      'Request Header Fields Too Large',
      `the request line and headers are larger than ${maxHeaderSize} bytes, the most this server reads`,
    ],
    ERR_HTTP_REQUEST_TIMEOUT: [
      408,
      'Request Timeout',
      `the request was not received in time: headers within ${seconds(timeouts.headersMs)}, the whole request within ${seconds(timeouts.requestMs)}`,
    ],
  };
  return (error: NodeJS.ErrnoException, socket: Duplex): void => {
    if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    // Bytes after a request that said "Connection: close": that request is still being
    // answered, and the connection closes after it; an error written now would overtake it.
    if (error.code === 'HPE_CLOSED_CONNECTION') return;
    const [status, reason, message] = answers[error.code ?? ''] ?? [
      400,
      'Bad Request',
      `malformed HTTP request (${error.code ?? 'unreadable'})`,
    ];
    const body = JSON.stringify({ error: message });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  };
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
