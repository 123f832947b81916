#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type SettingName, type Settings } from '../server/config.js';
import { serve } from '../server/serve.js';
import { StoreOpenError } from '../store/sqlite/sqlite-store.js';

/** Each `serve` flag and the environment setting it overrides. */
const SERVE_FLAGS: Record<string, { env: SettingName; help: string }> = {
  port: { env: 'PORT', help: 'listen port (default 3000; 0 picks a free one)' },
  host: { env: 'HOST', help: 'listen address (default :: with auth, else 127.0.0.1)' },
  'auth-token': { env: 'VERS_AUTH_TOKEN', help: 'bearer token for /registry (prefer the env: flags show in ps)' },
  db: { env: 'REGISTRY_DB', help: 'SQLite file (default ./data/registry.db)' },
  'stale-after': { env: 'REGISTRY_STALE_AFTER', help: 'no heartbeat for this long = stale (default 5m)' },
  'log-level': { env: 'LOG_LEVEL', help: 'fatal|error|warn|info|debug|trace|silent (default info)' },
  'self-id': { env: 'VERS_VM_ID', help: 'register this server as role infra under this VM id' },
  'self-name': { env: 'REGISTRY_SELF_NAME', help: 'name of the self-registration (default: hostname)' },
  'self-address': { env: 'REGISTRY_SELF_ADDRESS', help: 'address of the self-registration (default: hostname)' },
};

const USAGE = `Usage: vm-registry serve [options]

Serves the registry over HTTP. Every option can also be set by its environment variable.

${Object.entries(SERVE_FLAGS)
  .map(([flag, { env, help }]) => `  --${flag.padEnd(14)} ${env.padEnd(22)} ${help}`)
  .join('\n')}
  --help                                      show this help`;

function fail(message: string, code = 1): never {
  process.stderr.write(`vm-registry: ${message}\n`);
  process.exit(code);
}

async function runServe(args: string[]): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        ...Object.fromEntries(Object.keys(SERVE_FLAGS).map((flag) => [flag, { type: 'string' as const }])),
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    fail(`${(error as Error).message}\n\n${USAGE}`, 2);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const settings: Settings = {};
  for (const [name, value] of Object.entries(process.env)) settings[name as SettingName] = value;
  for (const [flag, { env }] of Object.entries(SERVE_FLAGS)) {
    if (typeof values[flag] === 'string') settings[env] = values[flag] as string;
  }
  try {
    await serve(loadConfig(settings));
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message, 2);
    if (error instanceof StoreOpenError) fail(error.message);
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') fail((error as Error).message);
    throw error;
  }
}

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case 'serve':
    await runServe(rest);
    break;
  case undefined:
  case 'help':
  case '--help':
  case '-h':
    process.stdout.write(`Usage: vm-registry <command>\n\nCommands:\n  serve    run the registry server (vm-registry serve --help)\n`);
    break;
  default:
    fail(`unknown command "${command}"; try vm-registry --help`, 2);
}
