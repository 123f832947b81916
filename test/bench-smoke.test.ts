import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BenchResults, SwarmResults } from '../bench/results.js';
import { tempDir } from './support/server-process.js';

const BENCH = fileURLToPath(new URL('../bench/run.js', import.meta.url));
const out = tempDir('vm-registry-bench-smoke-');
after(() => out.remove());

const isCount = (value: unknown) => typeof value === 'number' && Number.isFinite(value) && value >= 0;

// Keeps the harness working; what the figures are is for `npm run bench` to show, never for a test to assert.
it('npm run bench -- --n 1000 --quick produces a well-formed result', { timeout: 180_000 }, async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [BENCH, '--n', '1000', '--quick', '--duration', '0.3', '--warmup', '0', '--rss-idle', '2', '--out', out.path],
    { timeout: 170_000, maxBuffer: 16 * 1024 * 1024 },
  );
  assert.match(stdout, /\| scenario +\| ceiling rps/);

  const files = readdirSync(out.path);
  assert.equal(files.length, 1);
  const results = JSON.parse(readFileSync(join(out.path, files[0]), 'utf8')) as BenchResults;
  assert.equal(results.format, 1);
  assert.ok(results.machine.cores > 0 && results.machine.cpu.length > 0);
  assert.equal(results.preload.n, 1000);
  assert.ok(isCount(results.preload.perSecond));
  assert.ok(isCount(results.restart.firstDiscoverMs));
  assert.ok(isCount(results.rssMb.settled) && isCount(results.rssMb.settledAfterSeconds), 'the settled RSS of a server holding the registry');
  assert.deepEqual(
    results.scenarios.map((s) => s.name).sort(),
    ['discover-1%', 'discover-one', 'get', 'heartbeat', 'list-running', 'patch', 'register', 'sse-fanout'],
  );
  for (const scenario of results.scenarios) {
    if (scenario.skipped !== undefined) {
      assert.equal(scenario.name, 'sse-fanout', `only the SSE fan-out may be skipped (${scenario.skipped})`);
      assert.match(scenario.skipped, /answered 404/, 'and only while its endpoint is missing');
      continue;
    }
    assert.equal(scenario.runs!.ceiling.length, 2, scenario.name);
    assert.equal(scenario.runs!.ours.length, 2, scenario.name);
    for (const run of [...scenario.runs!.ceiling, ...scenario.runs!.ours]) {
      assert.ok([run.rps, run.p50, run.p99, run.ok, run.failed].every(isCount), `${scenario.name}: ${JSON.stringify(run)}`);
    }
    assert.ok(isCount(scenario.ratio), scenario.name);
    assert.equal(typeof scenario.met, 'boolean');
  }
});

it('npm run bench -- --swarm with a tiny swarm produces a well-formed result, etcd measured or skipped with how to get it', { timeout: 240_000 }, async () => {
  const swarmOut = tempDir('vm-registry-bench-swarm-smoke-');
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [BENCH, '--swarm', '--swarm-vms', '300', '--swarm-seconds', '2', '--out', swarmOut.path],
      { timeout: 230_000, maxBuffer: 16 * 1024 * 1024 },
    );
    assert.match(stdout, /\| server CPU, % of one core +\|/);

    const files = readdirSync(swarmOut.path);
    assert.equal(files.length, 1);
    const results = JSON.parse(readFileSync(join(swarmOut.path, files[0]), 'utf8')) as SwarmResults;
    assert.equal(results.kind, 'swarm');
    assert.deepEqual(results.options, { vms: 300, seconds: 2, pg: false });
    assert.deepEqual(results.runs.map((run) => run.contender.replace(/ .*/, '')), ['ours,', 'etcd']);
    const [ours, etcd] = results.runs;
    assert.equal(ours.skipped, undefined, 'ours always runs');
    if (etcd.skipped !== undefined) assert.match(etcd.skipped, /etcd is not on PATH: install it \(Debian\/Ubuntu: apt-get install etcd-server/);
    for (const run of results.runs.filter((r) => r.skipped === undefined)) {
      assert.equal(run.preload!.n, 300, run.contender);
      assert.ok([run.cpuPercent, run.cpuMsPerOperation, run.rssMb, run.changes, run.eventLag!.expected].every(isCount), run.contender);
      for (const figure of [run.latency!.heartbeat, run.latency!.discover, run.eventLag!]) {
        assert.ok([figure.p50, figure.p99, figure.count].every(isCount), `${run.contender}: ${JSON.stringify(figure)}`);
      }
      assert.ok(run.sent!.heartbeat > 0 && run.sent!.blocking >= 500, `${run.contender} sent the mix: ${JSON.stringify(run.sent)}`);
      assert.ok([run.blocking!.wakeups, run.blocking!.unchanged, run.blocking!.perChange].every(isCount), run.contender);
      assert.ok(Object.values(run.errors!).every(isCount), run.contender);
      const slices = run.slices!;
      assert.deepEqual(
        slices.map((slice) => slice.fromSeconds),
        [0],
        `${run.contender}: one slice for a mix shorter than a slice, from its start`,
      );
      assert.equal(
        slices.reduce((sum, slice) => sum + slice.heartbeats, 0),
        run.latency!.heartbeat.count,
        `${run.contender}: every measured heartbeat in a slice`,
      );
      assert.ok([slices[0].toSeconds, slices[0].heartbeat.max, slices[0].serverCpuPercent, slices[0].generatorLagMaxMs].every(isCount), run.contender);
    }
    assert.match(stdout, /ours, SQLite, slice by slice/);
  } finally {
    swarmOut.remove();
  }
});

it('npm run bench -- --pg also measures the read scenarios on the embedded store, and the database CPU meanwhile', { timeout: 300_000 }, async () => {
  const pgOut = tempDir('vm-registry-bench-smoke-pg-');
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [BENCH, '--pg', '--n', '300', '--quick', '--duration', '0.3', '--warmup', '0', '--rss-idle', '0', '--only', 'get,list-running,heartbeat', '--out', pgOut.path],
      { timeout: 290_000, maxBuffer: 16 * 1024 * 1024 },
    );
    assert.match(stdout, /a PostgreSQL replica against the embedded store/);
    const [file] = readdirSync(pgOut.path);
    const results = JSON.parse(readFileSync(join(pgOut.path, file), 'utf8')) as BenchResults;
    assert.deepEqual(results.embedded?.map((s) => s.name), ['get', 'list-running'], 'the read scenarios asked for, and only those');
    for (const scenario of results.embedded!) assert.ok(isCount(scenario.ratio), scenario.name);
    const byName = new Map(results.scenarios.map((s) => [s.name, s]));
    for (const read of ['get', 'list-running']) assert.ok(isCount(byName.get(read)?.databaseCpuPercent), `${read}: the database's CPU`);
    assert.equal(byName.get('heartbeat')?.databaseCpuPercent, undefined, 'sampled during the read scenarios only');
  } finally {
    pgOut.remove();
  }
});

it('npm run bench -- --swarm --swarm-only ours runs our server alone, under the CPU profiler with --profile', { timeout: 240_000 }, async () => {
  const swarmOut = tempDir('vm-registry-bench-swarm-only-');
  try {
    const run = (...args: string[]) => promisify(execFile)(process.execPath, [BENCH, ...args], { timeout: 230_000, maxBuffer: 16 * 1024 * 1024 });
    await assert.rejects(run('--swarm', '--swarm-only', 'ours,consul'), (error: { code: number; stderr: string }) => {
      assert.equal(error.code, 2);
      assert.match(error.stderr, /--swarm-only takes ours, etcd \(got "consul"\)/);
      return true;
    });
    const profiles = join(swarmOut.path, 'profiles');
    await run('--swarm', '--swarm-only', 'ours', '--swarm-vms', '300', '--swarm-seconds', '2', '--profile', profiles, '--out', swarmOut.path);
    const file = readdirSync(swarmOut.path).find((name) => name.endsWith('.json'))!;
    const results = JSON.parse(readFileSync(join(swarmOut.path, file), 'utf8')) as SwarmResults;
    assert.deepEqual(results.runs.map((r) => [r.contender, r.skipped]), [['ours, SQLite', undefined]]);
    assert.ok(readdirSync(profiles).some((name) => name.endsWith('.cpuprofile')), 'the server wrote its CPU profile');
  } finally {
    swarmOut.remove();
  }
});
