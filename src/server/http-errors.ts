import type { FastifyError, FastifyInstance } from 'fastify';
import { RegistryError } from '../domain/errors.js';
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
      if (error.statusCode >= 500) request.log.warn({ err: error }, 'store unavailable');
      return reply.code(error.statusCode).send({ error: error.message });
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ error: `request body is larger than the limit of ${bodyLimit} bytes` });
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

/**
 * Reads every body as JSON whatever its Content-Type claims: `curl -d` sends form
 * encoding for what is plainly JSON. An empty body is no body, so that bodiless POSTs
 * from clients that always send `Content-Type: application/json` still work.
 */
export function installJsonBodyParser(app: FastifyInstance, bodyLimit: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (_request, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(new BadRequestError(`request body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
}
