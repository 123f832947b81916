// Bundles the dashboard and the API docs theme (src/ui) into dist/ui with esbuild, beside the
// pages and styles they load. Run by `npm run build` after tsc type-checked them.
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { extname, join } from 'node:path';
import { build } from 'esbuild';

const source = 'src/ui';
const target = 'dist/ui';

rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
const common = { outdir: target, bundle: true, target: ['chrome116', 'firefox124', 'safari17'], minify: true, legalComments: 'none', logLevel: 'warning' };
await build({ ...common, entryPoints: [join(source, 'dashboard.ts')], format: 'esm' });
// Swagger UI's page loads its theme as a classic script: an IIFE keeps its names off window.
await build({ ...common, entryPoints: [join(source, 'docs.ts')], format: 'iife' });
for (const name of readdirSync(source)) {
  if (['.html', '.css'].includes(extname(name))) copyFileSync(join(source, name), join(target, name));
}
