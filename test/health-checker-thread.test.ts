import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { systemClock } from '../src/domain/clock.js';
import { ChangeFeed } from '../src/server/feed/change-feed.js';
import { HealthChecker, WHOLE_REGISTRY } from '../src/server/ops/health-checker.js';
import { HealthHostRule } from '../src/server/ops/health-hosts.js';
import { RegistryMetrics } from '../src/server/ops/metrics.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { aVm } from '../src/testing/fixtures.js';
import { Target } from './support/health-target.js';
import { tempDir } from './support/server-process.js';

const dir = tempDir();
after(() => dir.remove());

describe('the health checker thread', () => {
  it('a checker thread that dies is logged, counted and started again, and checks go on', async () => {
    const target = await Target.start();
    const store = openSqliteStore({ file: join(dir.path, 'crash.db'), clock: systemClock, staleAfterMs: 60_000, healthChecks: true });
    const feed = await ChangeFeed.start(store);
    const metrics = new RegistryMetrics();
    const lines: string[] = [];
    const log = pino(new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) }));
    const settings = { intervalMs: 300, timeoutMs: 200, failures: 2, concurrency: 8, scheme: 'http' as const, hosts: new HealthHostRule(['127.0.0.1'], []) };
    const checker = new HealthChecker(store, feed, settings, WHOLE_REGISTRY, metrics.healthChecks(), log);
    const statusOf = async () => (await store.get('crashy'))?.services?.[0].health?.status;
    const until = async (status: string) => {
      for (let i = 0; i < 100 && (await statusOf()) !== status; i++) await sleep(50);
      assert.equal(await statusOf(), status);
    };
    try {
      checker.start();
      await store.register(aVm({ id: 'crashy', address: '127.0.0.1', services: [{ name: 'pi-rpc', port: target.port, healthPath: '/health' }] }));
      await until('passing');

      // The thread ends without the checker having asked it to, as a crash would end it.
      await checker['worker']!.terminate();
      target.mode = 'fail';
      await until('critical');

      assert.ok(lines.some((line) => line.includes('the checker thread stopped; starting another')), lines.join(''));
      assert.match((await metrics.render()).text, /vm_registry_health_checker_restarts_total 1\b/);
    } finally {
      await checker.stop();
      feed.close();
      metrics.close();
      await store.close();
      await target.close();
    }
  });
});
