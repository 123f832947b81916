import { hostname } from 'node:os';
import { parseDuration } from '../domain/duration.js';
import { ID_PATTERN, LIMITS } from '../domain/schemas.js';

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
  db: string;
  staleAfterMs: number;
  /** Stale this long = deregistered by the sweeper; undefined: never. */
  reapAfterMs?: number;
  /** Events the log keeps for watchers to resume from. */
  eventRetention: number;
  logLevel: string;
  self?: SelfRegistrationConfig;
}

/** A setting the operator got wrong; the message names the setting and what it accepts. */
export class ConfigError extends Error {}

/** Settings by their environment name; the `serve` flags map onto the same names. */
export type Settings = Partial<Record<SettingName, string>>;
export type SettingName =
  | 'PORT'
  | 'HOST'
  | 'VERS_AUTH_TOKEN'
  | 'REGISTRY_DB'
  | 'REGISTRY_STALE_AFTER'
  | 'REGISTRY_REAP_AFTER'
  | 'REGISTRY_EVENT_RETENTION'
  | 'LOG_LEVEL'
  | 'VERS_VM_ID'
  | 'REGISTRY_SELF_NAME'
  | 'REGISTRY_SELF_ADDRESS';

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

export function loadConfig(settings: Settings): ServerConfig {
  const authToken = settings.VERS_AUTH_TOKEN || undefined;
  const logLevel = settings.LOG_LEVEL || 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${logLevel}")`);
  }
  const listenPort = port(settings.PORT);
  const chosenHost = settings.HOST || undefined;
  return {
    port: listenPort,
    host: chosenHost ?? (authToken ? '::' : '127.0.0.1'),
    ...(chosenHost === undefined &&
      !authToken && {
        hostReason:
          'no VERS_AUTH_TOKEN is set, so the registry listens on 127.0.0.1 only; ' +
          'set VERS_AUTH_TOKEN (and HOST=:: or HOST=0.0.0.0) to serve other machines',
      }),
    authToken,
    db: settings.REGISTRY_DB || './data/registry.db',
    staleAfterMs: duration('REGISTRY_STALE_AFTER', settings.REGISTRY_STALE_AFTER, 5 * 60_000),
    ...(settings.REGISTRY_REAP_AFTER && settings.REGISTRY_REAP_AFTER !== 'never' && {
      reapAfterMs: duration('REGISTRY_REAP_AFTER', settings.REGISTRY_REAP_AFTER, 0),
    }),
    eventRetention: count('REGISTRY_EVENT_RETENTION', settings.REGISTRY_EVENT_RETENTION, 10_000),
    logLevel,
    self: selfRegistration(settings),
  };
}
