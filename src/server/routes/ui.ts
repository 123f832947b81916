import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';

/** Where `npm run build` puts the esbuild bundles and pages: dist/ui, beside dist/src. */
export const UI_DIR = fileURLToPath(new URL('../../../ui/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

// Scripts and styles come only from these files and the page talks only to this server, so
// an injected VM name or metadata value can do nothing even if it slipped past escaping.
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The dashboard (/ui): a few small built files, read once at start and served from memory.
 * Public like /health: the page holds no data, and asks for a token before it reads
 * anything behind auth.
 */
export const uiRoutes: FastifyPluginAsync = async (app) => {
  const files = new Map<string, { type: string; body: Buffer }>();
  if (existsSync(UI_DIR)) {
    for (const name of readdirSync(UI_DIR)) {
      const type = TYPES[extname(name)];
      if (type) files.set(name, { type, body: readFileSync(join(UI_DIR, name)) });
    }
  }

  const send = (reply: FastifyReply, name: string) => {
    const file = files.get(name);
    if (!file) {
      return reply
        .code(404)
        .send({ error: files.size === 0 ? 'the dashboard is not built: run npm run build' : `no file ${name} in the dashboard` });
    }
    return reply
      .type(file.type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .header('referrer-policy', 'no-referrer')
      .send(file.body);
  };

  const hidden = { schema: { hide: true } };
  app.get('/ui', hidden, (_request, reply) => send(reply, 'index.html'));
  app.get('/ui/', hidden, (_request, reply) => send(reply, 'index.html'));
  app.get<{ Params: { file: string } }>('/ui/:file', hidden, (request, reply) => send(reply, request.params.file));
};
