import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));
const src = join(root, 'src');

/**
 * The layers of src, each with the layers it may import. Imports run one way,
 * domain ← store ← server and domain ← client ← tools ← pi/mcp/cli/ui, so the SDK never
 * pulls in the server and the wire contract depends on nothing of ours.
 */
const mayImport: Record<string, readonly string[]> = {
  domain: [],
  store: ['domain'],
  client: ['domain'],
  tools: ['domain', 'client'],
  // The server answers /mcp with the same MCP server the stdio command runs, over the SDK.
  server: ['domain', 'store', 'client', 'mcp'],
  pi: ['domain', 'client', 'tools'],
  mcp: ['domain', 'client', 'tools'],
  ui: ['domain', 'client', 'tools'],
  // One binary: `vm-registry serve` and `token` run the server's own code, `mcp` the stdio MCP server.
  cli: ['domain', 'client', 'tools', 'server', 'mcp'],
  // The package entry re-exports the SDK, the stores and the app factory.
  'index.ts': ['domain', 'store', 'client', 'server'],
  // Fixtures the tests share; only tests may import them (checked below), and the package leaves them out.
  testing: ['domain', 'store', 'server'],
};

interface Edge {
  from: string;
  to: string;
}

function modulesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return modulesUnder(path);
    return /\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The file a relative specifier names: `./x.js` is `./x.ts` in the source tree. */
function resolveSpecifier(from: string, specifier: string): string {
  const base = resolve(dirname(from), specifier);
  const candidates = [base.replace(/\.js$/, '.ts'), base.replace(/\.js$/, '.tsx'), `${base}.ts`, join(base, 'index.ts'), base];
  return candidates.find((candidate) => existsSync(candidate)) ?? base;
}

/** Every import of every module in src, type-only imports, re-exports and `import()` included. */
function importEdges(): Edge[] {
  return modulesUnder(src).flatMap((file) => {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    return importedFiles
      .filter(({ fileName }) => fileName.startsWith('.'))
      .map(({ fileName }) => ({ from: rel(file), to: rel(resolveSpecifier(file, fileName)) }));
  });
}

const rel = (path: string) => relative(root, path).split(sep).join('/');
const layerOf = (path: string) => path.split('/')[1];
const isTest = (path: string) => /\.test\.tsx?$/.test(path);
const show = (edges: Edge[]) => edges.map(({ from, to }) => `${from} → ${to}`).join('\n');

/** The cycles through the graph, one for each import that leads back into its own path. */
function cycles(edges: Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const found: string[][] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (node: string): void => {
    const start = path.indexOf(node);
    if (start >= 0) found.push([...path.slice(start), node]);
    if (start >= 0 || done.has(node)) return;
    path.push(node);
    for (const to of next.get(node) ?? []) visit(to);
    path.pop();
    done.add(node);
  };
  for (const node of next.keys()) visit(node);
  return found;
}

describe('the import graph of src', () => {
  const edges = importEdges();
  const inSrc = edges.filter(({ to }) => to.startsWith('src/'));

  it('reads the imports of every module, type-only ones included', () => {
    // A guard for the reader itself: were it to miss imports, every rule below would pass.
    assert.ok(edges.some(({ from, to }) => from === 'src/index.ts' && to === 'src/client/index.ts'));
    assert.ok(edges.length > 200, `only ${edges.length} imports read`);
  });

  it('has no cycle', () => {
    const found = cycles(inSrc).map((cycle) => cycle.join(' → '));
    assert.deepEqual(found, [], `import cycles:\n${found.join('\n')}`);
  });

  it('imports only downward: domain ← store ← server, domain ← client ← tools ← pi/mcp/cli/ui', () => {
    const upward = inSrc.filter(({ from, to }) => {
      if (isTest(from)) return false;
      const [fromLayer, toLayer] = [layerOf(from), layerOf(to)];
      return fromLayer !== toLayer && !mayImport[fromLayer]?.includes(toLayer);
    });
    assert.deepEqual(upward, [], `imports against the layers:\n${show(upward)}`);
  });

  it('knows the layer of every module', () => {
    const unknown = [...new Set(edges.map(({ from }) => layerOf(from)))].filter((layer) => !(layer in mayImport));
    assert.deepEqual(unknown, [], 'a new folder in src needs its place in the layers');
  });

  it('imports no test file or test fixture from a module, and nothing from outside src', () => {
    const testCode = (path: string) => isTest(path) || layerOf(path) === 'testing';
    const wrong = edges.filter(({ from, to }) => (testCode(to) && !testCode(from)) || !to.startsWith('src/'));
    assert.deepEqual(wrong, [], `imports of test code:\n${show(wrong)}`);
  });
});
