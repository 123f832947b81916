import { ConfigError, loadConfig, type SettingName, type Settings } from '../../server/config.js';
import { serve as startServing } from '../../server/serve.js';
import { UsageError, type Command, type OptionSpec } from '../command.js';

/** Each `serve` flag and the environment setting it overrides. */
const SERVE_FLAGS: Record<string, { env: SettingName; help: string }> = {
  port: { env: 'PORT', help: 'listen port (default 3000; 0 picks a free one)' },
  host: { env: 'HOST', help: 'listen address (default :: with auth, else 127.0.0.1); beyond loopback it needs a token or --auth off' },
  'auth-token': { env: 'VERS_AUTH_TOKEN', help: 'bearer token for /registry (prefer the env: flags show in ps)' },
  auth: { env: 'REGISTRY_AUTH', help: 'off: serve with no token even on a non-loopback host (dangerous: anyone who reaches it can change the registry)' },
  'tokens-file': { env: 'REGISTRY_TOKENS_FILE', help: 'named, scoped tokens (JSON of SHA-256 digests); SIGHUP reloads' },
  'database-url': { env: 'DATABASE_URL', help: 'postgres://… selects PostgreSQL instead of SQLite (prefer the env: flags show in ps)' },
  'metrics-public': { env: 'REGISTRY_METRICS_PUBLIC', help: '1: /metrics needs no token' },
  'rate-limit': { env: 'REGISTRY_RATE_LIMIT', help: 'requests a minute per token and address, or per address without a token (default 120000; off)' },
  'max-watchers': { env: 'REGISTRY_MAX_WATCHERS', help: 'open event streams, and blocking queries waiting, per token and address (default 2000 each)' },
  db: { env: 'REGISTRY_DB', help: 'SQLite file (default ./data/registry.db)' },
  'stale-after': { env: 'REGISTRY_STALE_AFTER', help: 'no heartbeat for this long = stale (default 5m)' },
  'reap-after': { env: 'REGISTRY_REAP_AFTER', help: 'stale this long = deregistered (default never)' },
  'event-retention': { env: 'REGISTRY_EVENT_RETENTION', help: 'events kept for watchers to resume (default 10000)' },
  'log-level': { env: 'LOG_LEVEL', help: 'fatal|error|warn|info|debug|trace|silent (default info)' },
  'self-id': { env: 'VERS_VM_ID', help: 'register this server as role infra under this VM id' },
  'self-name': { env: 'REGISTRY_SELF_NAME', help: 'name of the self-registration (default: hostname)' },
  'self-address': { env: 'REGISTRY_SELF_ADDRESS', help: 'address of the self-registration (default: hostname)' },
  'health-checks': { env: 'REGISTRY_HEALTH_CHECKS', help: "on: probe services' healthPath; discover leaves out critical VMs (default off)" },
  'health-scheme': { env: 'REGISTRY_HEALTH_SCHEME', help: 'http|https (default http)' },
  'health-interval': { env: 'REGISTRY_HEALTH_INTERVAL', help: 'each service is checked once this often (default 30s)' },
  'health-timeout': { env: 'REGISTRY_HEALTH_TIMEOUT', help: 'a check answering later fails (default 5s)' },
  'health-failures': { env: 'REGISTRY_HEALTH_FAILURES', help: 'consecutive failures that make a service critical (default 2)' },
  'health-concurrency': { env: 'REGISTRY_HEALTH_CONCURRENCY', help: 'checks in flight at once (default 256)' },
  'health-hosts': { env: 'REGISTRY_HEALTH_HOSTS', help: 'hosts, *.suffix, IPs, CIDRs checks may reach (default any but loopback, link-local and this server)' },
};

export const serve: Command = {
  name: 'serve',
  summary: 'Serve the registry over HTTP until SIGTERM or SIGINT.',
  details: 'Every option can also be set by the environment variable in its help.',
  options: Object.fromEntries(
    Object.entries(SERVE_FLAGS).map(([flag, { env, help }]): [string, OptionSpec] => [
      flag,
      { type: 'string', value: 'VALUE', help: `${env}: ${help}` },
    ]),
  ),
  async run(context) {
    const settings: Settings = {};
    for (const [name, value] of Object.entries(process.env)) settings[name as SettingName] = value;
    for (const [flag, { env }] of Object.entries(SERVE_FLAGS)) {
      const value = context.values[flag];
      if (typeof value === 'string') settings[env] = value;
    }
    try {
      await startServing(loadConfig(settings));
    } catch (error) {
      // A setting the operator got wrong is a usage error (exit 2); a database that cannot be
      // opened or a port in use is a failure (exit 1), reported by its own message.
      if (error instanceof ConfigError) throw new UsageError(error.message);
      throw error;
    }
  },
};
