import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { ConfigError, parseSettings, type SettingValues, type Settings } from './settings.js';
import type { HealthCheckSettings } from './ops/health-checker.js';
import { HealthHostRule, ownAddresses } from './ops/health-hosts.js';

export interface SelfRegistrationConfig {
  id: string;
  name: string;
  address: string;
}

type HealthSetting = 'healthChecks' | 'healthScheme' | 'healthIntervalMs' | 'healthTimeoutMs' | 'healthFailures' | 'healthConcurrency' | 'healthHosts';

/**
 * The settings as the server uses them: each parsed by its row in SETTINGS, and the few that
 * depend on one another (the host, self-registration, health checks) resolved together.
 */
export type ServerConfig = Omit<SettingValues, 'host' | 'selfId' | 'selfName' | 'selfAddress' | HealthSetting> & {
  host: string;
  /** Why the host is what it is, when the operator did not choose it. */
  hostReason?: string;
  self?: SelfRegistrationConfig;
  /** REGISTRY_HEALTH_CHECKS=on: probe services' healthPath; undefined when off. */
  healthChecks?: HealthCheckSettings;
};

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

export function loadConfig(settings: Settings): ServerConfig {
  const {
    host,
    selfId,
    selfName,
    selfAddress,
    healthChecks: checking,
    healthScheme: scheme,
    healthIntervalMs: intervalMs,
    healthTimeoutMs: timeoutMs,
    healthFailures: failures,
    healthConcurrency: concurrency,
    healthHosts,
    ...parsed
  } = parseSettings(settings);
  const authConfigured = Boolean(parsed.authToken || parsed.tokensFile);
  if (parsed.authOff && authConfigured) {
    throw new ConfigError(
      `REGISTRY_AUTH=off switches authentication off, but ${parsed.authToken ? 'VERS_AUTH_TOKEN' : 'REGISTRY_TOKENS_FILE'} is set; unset one of them`,
    );
  }
  const listenHost = host ?? (authConfigured ? '::' : '127.0.0.1');
  // Checked whether or not checks are on: a typo must not wait for the day someone turns them on.
  if (timeoutMs > intervalMs) {
    throw new ConfigError(`REGISTRY_HEALTH_TIMEOUT (${timeoutMs} ms) must not be longer than REGISTRY_HEALTH_INTERVAL (${intervalMs} ms)`);
  }
  let hosts: HealthHostRule;
  try {
    hosts = new HealthHostRule(healthHosts, ownAddresses(listenHost));
  } catch (error) {
    throw new ConfigError(`REGISTRY_HEALTH_HOSTS: ${(error as Error).message}`);
  }
  return {
    ...parsed,
    host: listenHost,
    ...(host === undefined &&
      !authConfigured && {
        hostReason:
          'no VERS_AUTH_TOKEN is set, so the registry listens on 127.0.0.1 only; ' +
          'set VERS_AUTH_TOKEN (and HOST=:: or HOST=0.0.0.0) to serve other machines',
      }),
    self: selfId === undefined ? undefined : { id: selfId, name: selfName, address: selfAddress },
    healthChecks: checking ? { intervalMs, timeoutMs, failures, concurrency, scheme, hosts } : undefined,
  };
}
