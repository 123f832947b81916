import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { describe, it } from 'node:test';
import { loadConfig } from './config.js';
import { ConfigError, SERVE_FLAGS, withSettingsTable, type SettingName } from './settings.js';

/**
 * A value each setting refuses, or null for the settings that take any text. Keyed by every
 * setting name, so a new setting does not compile until it says how it fails.
 */
const REFUSED: Record<SettingName, string | null> = {
  PORT: '65536',
  HOST: null,
  VERS_AUTH_TOKEN: null,
  REGISTRY_AUTH: 'on',
  REGISTRY_TOKENS_FILE: null,
  REGISTRY_RATE_LIMIT: 'lots',
  REGISTRY_MAX_WATCHERS: '0',
  REGISTRY_DB: null,
  DATABASE_URL: 'mysql://db/registry',
  REGISTRY_PG_POOL_MAX: '2.5',
  REGISTRY_METRICS_PUBLIC: null,
  REGISTRY_STALE_AFTER: 'soon',
  REGISTRY_REAP_AFTER: '-5m',
  REGISTRY_EVENT_RETENTION: 'all',
  LOG_LEVEL: 'loud',
  VERS_VM_ID: 'has spaces',
  REGISTRY_SELF_NAME: null,
  REGISTRY_SELF_ADDRESS: null,
  REGISTRY_HEALTH_CHECKS: 'yes',
  REGISTRY_HEALTH_SCHEME: 'ftp',
  REGISTRY_HEALTH_INTERVAL: 'often',
  REGISTRY_HEALTH_TIMEOUT: '0',
  REGISTRY_HEALTH_FAILURES: 'two',
  REGISTRY_HEALTH_CONCURRENCY: '-1',
  REGISTRY_HEALTH_HOSTS: '10.0.0.0/99',
};

describe('the server settings', () => {
  it('with nothing set, every setting takes its default', () => {
    const { hostReason, ...config } = loadConfig({});
    assert.deepEqual(config, {
      port: 3000,
      host: '127.0.0.1',
      authToken: undefined,
      authOff: false,
      tokensFile: undefined,
      rateLimitPerMinute: 600_000,
      maxWatchers: 2_000,
      db: './data/registry.db',
      databaseUrl: undefined,
      pgPoolMax: 10,
      metricsPublic: false,
      staleAfterMs: 5 * 60_000,
      reapAfterMs: undefined,
      eventRetention: 10_000,
      logLevel: 'info',
      self: undefined,
      healthChecks: undefined,
    });
    assert.match(hostReason ?? '', /no VERS_AUTH_TOKEN is set, so the registry listens on 127\.0\.0\.1 only/);
  });

  it('a blank setting counts as unset', () => {
    const blank = Object.fromEntries(Object.keys(REFUSED).map((name) => [name, ' ']));
    assert.deepEqual(loadConfig(blank), loadConfig({}));
  });

  for (const [name, refused] of Object.entries(REFUSED) as [SettingName, string | null][]) {
    if (refused === null) {
      it(`${name} takes any text`, () => {
        assert.doesNotThrow(() => loadConfig({ [name]: 'any text: *?[]' }));
      });
    } else {
      it(`${name} refuses "${refused}" with a message naming it`, () => {
        assert.throws(() => loadConfig({ [name]: refused }), (error: Error) => {
          assert.ok(error instanceof ConfigError);
          assert.match(error.message, new RegExp(`^${name}\\b`));
          return true;
        });
      });
    }
  }

  it('the special values: rate limit off or 0, reaping never, self-registration named by the hostname', () => {
    assert.equal(loadConfig({ REGISTRY_RATE_LIMIT: 'off' }).rateLimitPerMinute, undefined);
    assert.equal(loadConfig({ REGISTRY_RATE_LIMIT: '0' }).rateLimitPerMinute, undefined);
    assert.equal(loadConfig({ REGISTRY_REAP_AFTER: 'never' }).reapAfterMs, undefined);
    assert.equal(loadConfig({ REGISTRY_REAP_AFTER: '90s' }).reapAfterMs, 90_000);
    assert.deepEqual(loadConfig({ VERS_VM_ID: ' infra-1 ' }).self, { id: 'infra-1', name: hostname(), address: hostname() });
  });

  it('health checks: their settings are checked while checks are off, and a timeout longer than the interval is refused', () => {
    const checks = loadConfig({ REGISTRY_HEALTH_CHECKS: 'ON', REGISTRY_HEALTH_INTERVAL: '10s', REGISTRY_HEALTH_HOSTS: '*.vm.internal, 10.0.0.0/8' }).healthChecks;
    assert.deepEqual(checks && { ...checks, hosts: undefined }, {
      intervalMs: 10_000,
      timeoutMs: 5_000,
      failures: 2,
      concurrency: 256,
      scheme: 'http',
      hosts: undefined,
    });
    assert.throws(() => loadConfig({ REGISTRY_HEALTH_TIMEOUT: '1m' }), /^Error: REGISTRY_HEALTH_TIMEOUT \(60000 ms\) must not be longer than REGISTRY_HEALTH_INTERVAL/);
  });

  it('each setting has its own serve flag', () => {
    assert.equal(new Set(SERVE_FLAGS.map(({ flag }) => flag)).size, Object.keys(REFUSED).length);
  });

  it('docs/configuration.md lists the settings exactly as the settings table says (npm run docs:settings rewrites it)', () => {
    const page = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    assert.equal(page, withSettingsTable(page));
  });
});
