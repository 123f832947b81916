import { hostname } from 'node:os';
import { parseDuration } from '../domain/duration.js';
import { ID_PATTERN, LIMITS } from '../domain/schemas/vm.js';
import { isPostgresUrl, redactDatabaseUrl } from '../store/postgres/database-url.js';

/** A setting the operator got wrong; the message names the setting and what it accepts. */
export class ConfigError extends Error {}

/**
 * One server setting, written once: the `serve` flags and their help, the configuration page's
 * table and the parsed config all come from these rows, so none of them can drift from another.
 */
interface Row<Env extends string> {
  env: Env;
  /** The `serve` flag, without its dashes; the flag wins over the environment. */
  flag: string;
  /** One line; `code` in backticks is code on the configuration page and plain text in --help. */
  help: string;
  /** A docs page (and anchor) that says more, relative to docs/. */
  see?: string;
}

interface WithDefault<Env extends string, Value> extends Row<Env> {
  /** The text a missing setting stands for, parsed like any given value. */
  default: string;
  parse(text: string, env: NoInfer<Env>): Value;
}

interface WithoutDefault<Env extends string, Value> extends Row<Env> {
  /** What a missing setting means, when no single text says it. */
  unset?: string;
  /** Given undefined when the setting is missing. */
  parse(text: string | undefined, env: NoInfer<Env>): Value;
}

type Setting<Env extends string, Value> = Row<Env> & {
  default?: string;
  unset?: string;
  parse(text: string | undefined, env: NoInfer<Env>): Value;
};

// A function rather than object literals so that each row's env stays a literal type
// (SettingName below) and its parser is checked against whether it has a default.
function setting<const Env extends string, Value>(row: WithDefault<Env, Value>): Setting<Env, Value>;
function setting<const Env extends string, Value>(row: WithoutDefault<Env, Value>): Setting<Env, Value>;
function setting<Env extends string, Value>(row: WithDefault<Env, Value> | WithoutDefault<Env, Value>): Setting<Env, Value> {
  return row as Setting<Env, Value>;
}

function port(text: string, env: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new ConfigError(`${env} must be a whole number from 0 to 65535 (got "${text}")`);
  }
  return value;
}

function count(text: string, env: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(`${env} must be a whole number, 1 or more (got "${text}")`);
  return value;
}

function duration(text: string, env: string): number {
  const value = parseDuration(text);
  if (value === undefined || value <= 0) {
    throw new ConfigError(`${env} must be a positive duration such as 90s, 5m or 300000 (got "${text}")`);
  }
  return value;
}

/** Free text; surrounding blanks are a slip of the shell, not part of a host or path. */
function trimmed(text: string | undefined): string | undefined {
  return text?.trim() || undefined;
}

/** One of a few words, in any case. */
function oneOf<const T extends string>(text: string, env: string, values: readonly T[]): T {
  const value = text.trim().toLowerCase();
  if (!values.includes(value as T)) throw new ConfigError(`${env} must be ${values.join(' or ')} (got "${text}")`);
  return value as T;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const SETTINGS = {
  port: setting({ env: 'PORT', flag: 'port', default: '3000', help: 'listen port (`0` picks a free one)', parse: port }),
  host: setting({
    env: 'HOST',
    flag: 'host',
    help: 'listen address; one that is not loopback (`127.0.0.0/8`, `::1`, `localhost`) needs a token, or `REGISTRY_AUTH=off`',
    unset: '`::` with a token, else `127.0.0.1`',
    parse: trimmed,
  }),
  authToken: setting({
    env: 'VERS_AUTH_TOKEN',
    flag: 'auth-token',
    help: 'bearer token every `/registry` route requires (full rights); prefer the environment, flags show in `ps`',
    // Taken as given, blanks included: a secret is never trimmed behind the operator's back.
    parse: (text) => text,
  }),
  authOff: setting({
    env: 'REGISTRY_AUTH',
    flag: 'auth',
    help: '`off`: serve without any token even on a non-loopback `HOST` (dangerous: anyone who can reach the port can read, register, change and delete every VM)',
    parse(text, env) {
      if (text === undefined) return false;
      if (text.trim() !== 'off') throw new ConfigError(`${env} must be "off" or unset (got "${text}")`);
      return true;
    },
  }),
  tokensFile: setting({
    env: 'REGISTRY_TOKENS_FILE',
    flag: 'tokens-file',
    help: 'named, scoped tokens (JSON of SHA-256 digests); `SIGHUP` reloads',
    see: 'security.md#tokens',
    parse: trimmed,
  }),
  rateLimitPerMinute: setting({
    env: 'REGISTRY_RATE_LIMIT',
    flag: 'rate-limit',
    help: 'requests a minute per caller (a token from one address, or an address without a token); `off`',
    see: 'security.md#limits',
    // A swarm behind one address (a NAT, one host of many VMs) sharing a token is one caller:
    // 100,000 VMs heartbeating once a minute are 100,000 requests a minute before any other
    // call, and re-registering them after an outage doubles that. 600,000 (10,000/s) holds them
    // with room, yet still stops a runaway loop long before it takes the whole server.
    default: '600000',
    parse: (text, env) => (['off', '0'].includes(text.trim()) ? undefined : count(text.trim(), env)),
  }),
  maxWatchers: setting({
    env: 'REGISTRY_MAX_WATCHERS',
    flag: 'max-watchers',
    help: 'open event streams per caller, and blocking queries waiting per caller',
    default: '2000',
    parse: count,
  }),
  db: setting({ env: 'REGISTRY_DB', flag: 'db', help: 'SQLite file', default: './data/registry.db', parse: (text) => text }),
  databaseUrl: setting({
    env: 'DATABASE_URL',
    flag: 'database-url',
    help: '`postgres://…` selects PostgreSQL instead of SQLite; prefer the environment, flags show in `ps`',
    see: 'postgres.md',
    parse(text, env) {
      if (text !== undefined && !isPostgresUrl(text.trim())) {
        throw new ConfigError(`${env} must be a postgres:// or postgresql:// URL (got "${redactDatabaseUrl(text)}"); unset it to use SQLite`);
      }
      return trimmed(text);
    },
  }),
  pgPoolMax: setting({ env: 'REGISTRY_PG_POOL_MAX', flag: 'pg-pool-max', help: 'PostgreSQL connections per replica', default: '10', parse: count }),
  metricsPublic: setting({
    env: 'REGISTRY_METRICS_PUBLIC',
    flag: 'metrics-public',
    help: '`1`: `/metrics` needs no token',
    parse: (text) => ['1', 'true', 'yes'].includes(text?.trim().toLowerCase() ?? ''),
  }),
  staleAfterMs: setting({
    env: 'REGISTRY_STALE_AFTER',
    flag: 'stale-after',
    help: 'no heartbeat for this long = stale: ms, or `1500ms`, `90s`, `5m`, `1h`',
    default: '5m',
    parse: duration,
  }),
  reapAfterMs: setting({
    env: 'REGISTRY_REAP_AFTER',
    flag: 'reap-after',
    help: 'stale for this long = deregistered automatically (event `reaped`); never in the first `REGISTRY_STALE_AFTER` after start',
    default: 'never',
    parse: (text, env) => (text === 'never' ? undefined : duration(text, env)),
  }),
  eventRetention: setting({
    env: 'REGISTRY_EVENT_RETENTION',
    flag: 'event-retention',
    help: 'how many events the log keeps for watchers to resume from',
    default: '10000',
    parse: count,
  }),
  logLevel: setting({
    env: 'LOG_LEVEL',
    flag: 'log-level',
    help: '`fatal` … `trace`, or `silent`',
    default: 'info',
    parse(text, env) {
      if (!LOG_LEVELS.includes(text)) throw new ConfigError(`${env} must be one of ${LOG_LEVELS.join(', ')} (got "${text}")`);
      return text;
    },
  }),
  selfId: setting({
    env: 'VERS_VM_ID',
    flag: 'self-id',
    help: 'register this server as role `infra` under this VM id',
    parse(text, env) {
      const id = trimmed(text);
      if (id !== undefined && (id.length > LIMITS.idLength || !new RegExp(ID_PATTERN).test(id))) {
        throw new ConfigError(`${env} "${id}" is not a valid VM id (1-${LIMITS.idLength} of letters, digits, ".", "_", ":", "-")`);
      }
      return id;
    },
  }),
  selfName: setting({ env: 'REGISTRY_SELF_NAME', flag: 'self-name', help: 'name of the self-registration', unset: 'hostname', parse: (text) => trimmed(text) ?? hostname() }),
  selfAddress: setting({
    env: 'REGISTRY_SELF_ADDRESS',
    flag: 'self-address',
    help: 'address of the self-registration',
    unset: 'hostname',
    parse: (text) => trimmed(text) ?? hostname(),
  }),
  healthChecks: setting({
    env: 'REGISTRY_HEALTH_CHECKS',
    flag: 'health-checks',
    help: "`on`: probe each service's `healthPath`; discover then leaves out VMs with a critical service",
    see: 'health-checks.md',
    default: 'off',
    parse: (text, env) => oneOf(text, env, ['on', 'off']) === 'on',
  }),
  healthScheme: setting({
    env: 'REGISTRY_HEALTH_SCHEME',
    flag: 'health-scheme',
    help: '`http` or `https`: how checks speak to services',
    default: 'http',
    parse: (text, env) => oneOf(text, env, ['http', 'https']),
  }),
  healthIntervalMs: setting({ env: 'REGISTRY_HEALTH_INTERVAL', flag: 'health-interval', help: 'each service is checked once this often', default: '30s', parse: duration }),
  healthTimeoutMs: setting({
    env: 'REGISTRY_HEALTH_TIMEOUT',
    flag: 'health-timeout',
    help: 'a check that has not answered by then fails; at most `REGISTRY_HEALTH_INTERVAL`',
    default: '5s',
    parse: duration,
  }),
  healthFailures: setting({
    env: 'REGISTRY_HEALTH_FAILURES',
    flag: 'health-failures',
    help: 'consecutive failed checks that make a service critical',
    default: '2',
    parse: count,
  }),
  healthConcurrency: setting({ env: 'REGISTRY_HEALTH_CONCURRENCY', flag: 'health-concurrency', help: 'checks in flight at once', default: '256', parse: count }),
  healthHosts: setting({
    env: 'REGISTRY_HEALTH_HOSTS',
    flag: 'health-hosts',
    help: 'comma-separated hosts, `*.suffix`, IPs and CIDRs checks may reach',
    see: 'health-checks.md',
    unset: 'any but loopback, link-local and this server',
    parse: (text) => (text ?? '').split(',').map((entry) => entry.trim()).filter((entry) => entry !== ''),
  }),
};

type Rows = typeof SETTINGS;
export type SettingName = Rows[keyof Rows]['env'];
/** Settings by their environment name, as the environment or the `serve` flags give them. */
export type Settings = Partial<Record<SettingName, string>>;
/** Each setting parsed, by its name in the config. */
export type SettingValues = { [Key in keyof Rows]: ReturnType<Rows[Key]['parse']> };

const rows = Object.entries(SETTINGS) as [keyof Rows, Setting<SettingName, unknown>][];

/** Parses every setting, stopping at the first one the operator got wrong (a ConfigError naming it). */
export function parseSettings(settings: Settings): SettingValues {
  // A blank value is unset: `FOO= vm-registry serve` must not differ from leaving FOO out.
  const given = (env: SettingName) => (settings[env]?.trim() ? settings[env] : undefined);
  return Object.fromEntries(rows.map(([key, row]) => [key, row.parse(given(row.env) ?? row.default, row.env)])) as SettingValues;
}

function plain(markdown: string): string {
  return markdown.replace(/`/g, '');
}

/** The `serve` flags: each setting's flag, the environment name it overrides, and its --help line. */
export const SERVE_FLAGS = rows.map(([, row]) => {
  const fallback = row.default ?? (row.unset && plain(row.unset));
  // The environment name first, so that whoever knows either spelling finds the line.
  return { flag: row.flag, env: row.env, help: `${row.env}: ${plain(row.help)}${fallback ? ` (default ${fallback})` : ''}` };
});

const START = '<!-- settings:start -->';
const END = '<!-- settings:end -->';

/** The configuration page's table of server settings. */
function settingsTable(): string {
  return [
    '| environment | flag | meaning | default |',
    '|---|---|---|---|',
    ...rows.map(([, row]) => {
      const see = row.see ? ` (see [${row.see.split('#')[0]}](${row.see}))` : '';
      const fallback = row.default === undefined ? (row.unset ?? 'unset') : `\`${row.default}\``;
      return `| \`${row.env}\` | \`--${row.flag}\` | ${row.help}${see} | ${fallback} |`;
    }),
  ].join('\n');
}

/** The page with the table between its settings markers regenerated from SETTINGS. */
export function withSettingsTable(page: string): string {
  const start = page.indexOf(START);
  const end = page.indexOf(END);
  if (start < 0 || end < start) throw new Error(`the page has no ${START} … ${END} markers`);
  return `${page.slice(0, start + START.length)}\n${settingsTable()}\n${page.slice(end)}`;
}
