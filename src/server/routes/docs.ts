import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyPluginAsync } from 'fastify';
import { CONTENT_SECURITY_POLICY, UI_DIR } from './ui.js';

/** The theme built from src/ui (docs.css, docs.js); absent until `npm run build` has run. */
function theme(name: string): { filename: string; content: string }[] {
  const file = join(UI_DIR, name);
  return existsSync(file) ? [{ filename: name, content: readFileSync(file, 'utf8') }] : [];
}

/**
 * /docs: Swagger UI over the document @fastify/swagger builds from the routes' schemas, with
 * its example values and "Try it out". Its scripts and styles are served from the package,
 * so it works with no network beyond this server; the page is public like /ui (it holds no
 * data), and every request it tries carries the bearer token given to Authorize, or the one
 * the dashboard keeps in this tab.
 */
export const docsRoutes: FastifyPluginAsync = async (app) => {
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: CONTENT_SECURITY_POLICY,
    theme: { title: 'vm-registry API', css: theme('docs.css'), js: theme('docs.js') },
    uiConfig: {
      // No top bar: its URL box would invite loading documents from elsewhere.
      layout: 'BaseLayout',
      docExpansion: 'list',
      deepLinking: true,
      displayRequestDuration: true,
      defaultModelsExpandDepth: 0,
    },
  });
};
