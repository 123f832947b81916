import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startServer, tempDir } from './support/server-process.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = tempDir();
after(() => dir.remove());

interface PackedFile {
  path: string;
}

/**
 * The package as a user receives it: packed by npm, installed into an empty project, used by
 * its exports and its bin. Installs from the npm registry (npm's cache where it can) without running install
 * scripts; better-sqlite3's native addon, which its script would compile for a minute, is
 * taken from this checkout's build of the same version.
 */
describe('the published package', () => {
  let files: string[];
  const project = join(dir.path, 'project');

  before(async () => {
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir.path], {
      cwd: root,
      maxBuffer: 16 * 1024 * 1024,
    });
    const [packed] = JSON.parse(stdout) as [{ filename: string; files: PackedFile[] }];
    files = packed.files.map((file) => file.path);
    cpSync(join(root, 'test/fixtures/empty-project'), project, { recursive: true });
    await run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', join(dir.path, packed.filename)], {
      cwd: project,
    });
    cpSync(join(root, 'node_modules/better-sqlite3/build'), join(project, 'node_modules/better-sqlite3/build'), { recursive: true });
  });

  it('ships no test code: no test files, no conformance suite, no test helpers, nothing importing them', () => {
    assert.ok(files.length > 0);
    assert.deepEqual(files.filter((path) => /\.test\.|conformance|(^|\/)test\/|(^|\/)src\/testing\//.test(path)), []);
    const reachingIntoTests = files
      .filter((path) => path.endsWith('.js'))
      .filter((path) => /from ['"][./]+\/(test|testing)\//.test(readFileSync(join(project, 'node_modules/vm-registry', path), 'utf8')));
    assert.deepEqual(reachingIntoTests, []);
  });

  it('imports as vm-registry with the SDK, both stores and the app factory', async () => {
    writeFileSync(
      join(project, 'embed.mjs'),
      `import * as registry from 'vm-registry';
       import * as client from 'vm-registry/client';
       const store = registry.openSqliteStore({ file: 'embedded.db', clock: registry.systemClock, staleAfterMs: 60000 });
       const app = await registry.buildApp({ store, clock: registry.systemClock });
       const created = await app.inject({ method: 'POST', url: '/registry/vms', payload: { id: 'e1', name: 'e', role: 'worker', address: 'e1.local', registeredBy: 'embedder' } });
       await app.close();
       await store.close();
       console.log(JSON.stringify({
         created: created.statusCode,
         sameClient: registry.RegistryClient === client.RegistryClient,
         exports: Object.keys(registry).sort(),
       }));`,
    );
    const { stdout } = await run(process.execPath, ['embed.mjs'], { cwd: project });
    const result = JSON.parse(stdout) as { created: number; sameClient: boolean; exports: string[] };
    assert.equal(result.created, 201);
    assert.equal(result.sameClient, true);
    for (const name of ['RegistryClient', 'openSqliteStore', 'openPostgresStore', 'buildApp', 'serve', 'loadConfig']) {
      assert.ok(result.exports.includes(name), `vm-registry exports ${name}`);
    }
  });

  it('type-checks an import of each export against the shipped declarations', async () => {
    writeFileSync(
      join(project, 'typed.ts'),
      `import { buildApp, type RegistryStore } from 'vm-registry';
       import { RegistryClient, type Vm } from 'vm-registry/client';
       export const client: RegistryClient = new RegistryClient({ url: 'http://127.0.0.1:1' });
       export type Pair = [Vm, RegistryStore, typeof buildApp];`,
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    await run(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', 'typed.ts'], {
      cwd: project,
    });
  });

  it('runs its bin: vm-registry serve answers /health', async () => {
    const server = await startServer({ cli: join(project, 'node_modules/vm-registry/dist/src/cli/main.js'), env: { REGISTRY_DB: join(dir.path, 'bin.db') } });
    try {
      const health = (await (await fetch(`${server.url}/health`)).json()) as { status: string };
      assert.equal(health.status, 'ok');
    } finally {
      await server.stop();
    }
  });
});
