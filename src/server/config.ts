import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import { parseDuration } from '../domain/duration.js';
import { ID_PATTERN, LIMITS } from '../domain/schemas.js';
import { isPostgresUrl, redactDatabaseUrl } from '../store/postgres/database-url.js';
import type { HealthCheckSettings } from './ops/health-checker.js';
import { HealthHostRule, ownAddresses } from './ops/health-hosts.js';

export interface SelfRegistrationConfig {
  id: string;
  name: string;
  address: string;
}

export interface ServerConfig {
  port: number;
  host: string;
  /** Why the host is what it is, when the operator did not choose it. */
  hostReason?: string;
  authToken?: string;
  /** REGISTRY_AUTH=off: the operator means to serve without any token, even beyond this machine. */
  authOff: boolean;
  /** REGISTRY_TOKENS_FILE: named, scoped tokens, re-read on SIGHUP. */
  tokensFile?: string;
  /** REGISTRY_METRICS_PUBLIC=1: /metrics needs no token, for scrapers inside a trusted network. */
  metricsPublic: boolean;
  /** Requests per minute per caller (see callerKey); undefined: no limit. */
  rateLimitPerMinute?: number;
  /** Open event streams per caller, and blocking queries waiting per caller (see callerKey). */
  maxWatchers: number;
  /** SQLite file; unused when databaseUrl selects PostgreSQL. */
  db: string;
  /** postgres://… : several replicas share this PostgreSQL database instead of a SQLite file. */
  databaseUrl?: string;
  /** Connections each replica's PostgreSQL pool may open. */
  pgPoolMax: number;
  staleAfterMs: number;
  /** Stale this long = deregistered by the sweeper; undefined: never. */
  reapAfterMs?: number;
  /** Events the log keeps for watchers to resume from. */
  eventRetention: number;
  logLevel: string;
  self?: SelfRegistrationConfig;
  /** REGISTRY_HEALTH_CHECKS=on: probe services' healthPath; undefined when off. */
  healthChecks?: HealthCheckSettings;
}

/** A setting the operator got wrong; the message names the setting and what it accepts. */
export class ConfigError extends Error {}

/** Settings by their environment name; the `serve` flags map onto the same names. */
export type Settings = Partial<Record<SettingName, string>>;
export type SettingName =
  | 'PORT'
  | 'HOST'
  | 'VERS_AUTH_TOKEN'
  | 'REGISTRY_AUTH'
  | 'REGISTRY_TOKENS_FILE'
  | 'REGISTRY_METRICS_PUBLIC'
  | 'REGISTRY_RATE_LIMIT'
  | 'REGISTRY_MAX_WATCHERS'
  | 'REGISTRY_DB'
  | 'DATABASE_URL'
  | 'REGISTRY_PG_POOL_MAX'
  | 'REGISTRY_STALE_AFTER'
  | 'REGISTRY_REAP_AFTER'
  | 'REGISTRY_EVENT_RETENTION'
  | 'LOG_LEVEL'
  | 'VERS_VM_ID'
  | 'REGISTRY_SELF_NAME'
  | 'REGISTRY_SELF_ADDRESS'
  | 'REGISTRY_HEALTH_CHECKS'
  | 'REGISTRY_HEALTH_SCHEME'
  | 'REGISTRY_HEALTH_INTERVAL'
  | 'REGISTRY_HEALTH_TIMEOUT'
  | 'REGISTRY_HEALTH_FAILURES'
  | 'REGISTRY_HEALTH_CONCURRENCY'
  | 'REGISTRY_HEALTH_HOSTS';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function port(text: string | undefined): number {
  if (text === undefined || text === '') return 3000;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new ConfigError(`PORT must be a whole number from 0 to 65535 (got "${text}")`);
  }
  return value;
}

function duration(name: SettingName, text: string | undefined, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const value = parseDuration(text);
  if (value === undefined || value <= 0) {
    throw new ConfigError(`${name} must be a positive duration such as 90s, 5m or 300000 (got "${text}")`);
  }
  return value;
}

function count(name: SettingName, text: string | undefined, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(`${name} must be a whole number, 1 or more (got "${text}")`);
  return value;
}

function databaseUrl(text: string | undefined): string | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  if (!isPostgresUrl(text.trim())) {
    throw new ConfigError(`DATABASE_URL must be a postgres:// or postgresql:// URL (got "${redactDatabaseUrl(text)}"); unset it to use SQLite`);
  }
  return text.trim();
}

function authOff(text: string | undefined): boolean {
  const value = text?.trim();
  if (value === undefined || value === '') return false;
  if (value !== 'off') throw new ConfigError(`REGISTRY_AUTH must be "off" or unset (got "${text}")`);
  return true;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8, ::1 (in any spelling, IPv4-mapped too) and `localhost`: reachable from this machine only. */
export function isLoopback(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIPv4(host) ? 'ipv4' : isIPv6(host) ? 'ipv6' : undefined;
  return family !== undefined && LOOPBACK.check(host, family);
}

/**
 * Refuses to serve an open, writable registry beyond this machine: a HOST other machines can
 * reach needs a token (VERS_AUTH_TOKEN, or a tokens file holding one) unless REGISTRY_AUTH=off
 * says the operator means it. Decided once the tokens file is read: a file holding no token
 * guards nothing.
 */
export function refuseOpenExposure(config: ServerConfig, anyToken: boolean): void {
  if (anyToken || config.authOff || isLoopback(config.host)) return;
  const emptyFile = config.tokensFile ? ` (the tokens file ${config.tokensFile} holds none)` : '';
  throw new ConfigError(
    `HOST ${config.host} is not a loopback address and no token is configured${emptyFile}, ` +
      'so anyone who can reach it could change the registry. Set VERS_AUTH_TOKEN or REGISTRY_TOKENS_FILE, ' +
      'or listen on this machine only (HOST=127.0.0.1), or set REGISTRY_AUTH=off to serve it open on purpose (dangerous)',
  );
}

function selfRegistration(settings: Settings): SelfRegistrationConfig | undefined {
  const id = settings.VERS_VM_ID?.trim();
  if (!id) return undefined;
  if (id.length > LIMITS.idLength || !new RegExp(ID_PATTERN).test(id)) {
    throw new ConfigError(`VERS_VM_ID "${id}" is not a valid VM id (1-${LIMITS.idLength} of letters, digits, ".", "_", ":", "-")`);
  }
  const host = hostname();
  return {
    id,
    name: settings.REGISTRY_SELF_NAME?.trim() || host,
    address: settings.REGISTRY_SELF_ADDRESS?.trim() || host,
  };
}

function oneOf<T extends string>(name: SettingName, text: string | undefined, values: readonly T[], fallback: T): T {
  const value = text?.trim().toLowerCase();
  if (value === undefined || value === '') return fallback;
  if (!values.includes(value as T)) throw new ConfigError(`${name} must be ${values.join(' or ')} (got "${text}")`);
  return value as T;
}

/** Checked whether or not checks are on: a typo must not wait for the day someone turns them on. */
function healthChecks(settings: Settings, host: string): HealthCheckSettings | undefined {
  const on = oneOf('REGISTRY_HEALTH_CHECKS', settings.REGISTRY_HEALTH_CHECKS, ['on', 'off'], 'off') === 'on';
  const intervalMs = duration('REGISTRY_HEALTH_INTERVAL', settings.REGISTRY_HEALTH_INTERVAL, 30_000);
  const timeoutMs = duration('REGISTRY_HEALTH_TIMEOUT', settings.REGISTRY_HEALTH_TIMEOUT, 5_000);
  if (timeoutMs > intervalMs) {
    throw new ConfigError(`REGISTRY_HEALTH_TIMEOUT (${timeoutMs} ms) must not be longer than REGISTRY_HEALTH_INTERVAL (${intervalMs} ms)`);
  }
  const entries = (settings.REGISTRY_HEALTH_HOSTS ?? '').split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  let hosts: HealthHostRule;
  try {
    hosts = new HealthHostRule(entries, ownAddresses(host));
  } catch (error) {
    throw new ConfigError(`REGISTRY_HEALTH_HOSTS: ${(error as Error).message}`);
  }
  const checks: HealthCheckSettings = {
    intervalMs,
    timeoutMs,
    failures: count('REGISTRY_HEALTH_FAILURES', settings.REGISTRY_HEALTH_FAILURES, 2),
    concurrency: count('REGISTRY_HEALTH_CONCURRENCY', settings.REGISTRY_HEALTH_CONCURRENCY, 256),
    scheme: oneOf('REGISTRY_HEALTH_SCHEME', settings.REGISTRY_HEALTH_SCHEME, ['http', 'https'], 'http'),
    hosts,
  };
  return on ? checks : undefined;
}

export function loadConfig(settings: Settings): ServerConfig {
  const authToken = settings.VERS_AUTH_TOKEN || undefined;
  const tokensFile = settings.REGISTRY_TOKENS_FILE?.trim() || undefined;
  const authConfigured = Boolean(authToken || tokensFile);
  const noAuth = authOff(settings.REGISTRY_AUTH);
  if (noAuth && authConfigured) {
    throw new ConfigError(
      `REGISTRY_AUTH=off switches authentication off, but ${authToken ? 'VERS_AUTH_TOKEN' : 'REGISTRY_TOKENS_FILE'} is set; unset one of them`,
    );
  }
  const rateLimit = settings.REGISTRY_RATE_LIMIT?.trim();
  const logLevel = settings.LOG_LEVEL || 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${logLevel}")`);
  }
  const listenPort = port(settings.PORT);
  const chosenHost = settings.HOST?.trim() || undefined;
  const host = chosenHost ?? (authConfigured ? '::' : '127.0.0.1');
  return {
    port: listenPort,
    host,
    ...(chosenHost === undefined &&
      !authConfigured && {
        hostReason:
          'no VERS_AUTH_TOKEN is set, so the registry listens on 127.0.0.1 only; ' +
          'set VERS_AUTH_TOKEN (and HOST=:: or HOST=0.0.0.0) to serve other machines',
      }),
    authToken,
    authOff: noAuth,
    tokensFile,
    metricsPublic: ['1', 'true', 'yes'].includes(settings.REGISTRY_METRICS_PUBLIC?.trim().toLowerCase() ?? ''),
    // Generous by default: budgets are per token and address, and one orchestrator registering
    // or listing a whole swarm from one address must not be held back.
    ...(rateLimit !== 'off' && rateLimit !== '0' && {
      rateLimitPerMinute: count('REGISTRY_RATE_LIMIT', rateLimit, 120_000),
    }),
    maxWatchers: count('REGISTRY_MAX_WATCHERS', settings.REGISTRY_MAX_WATCHERS, 2_000),
    db: settings.REGISTRY_DB || './data/registry.db',
    databaseUrl: databaseUrl(settings.DATABASE_URL),
    pgPoolMax: count('REGISTRY_PG_POOL_MAX', settings.REGISTRY_PG_POOL_MAX, 10),
    staleAfterMs: duration('REGISTRY_STALE_AFTER', settings.REGISTRY_STALE_AFTER, 5 * 60_000),
    ...(settings.REGISTRY_REAP_AFTER && settings.REGISTRY_REAP_AFTER !== 'never' && {
      reapAfterMs: duration('REGISTRY_REAP_AFTER', settings.REGISTRY_REAP_AFTER, 0),
    }),
    eventRetention: count('REGISTRY_EVENT_RETENTION', settings.REGISTRY_EVENT_RETENTION, 10_000),
    logLevel,
    self: selfRegistration(settings),
    healthChecks: healthChecks(settings, host),
  };
}
