#!/usr/bin/env node
import { EXIT, helpText, runCommand, type Command } from './command.js';
import { backup } from './commands/backup.js';
import { discover } from './commands/discover.js';
import { exportCommand } from './commands/export.js';
import { get } from './commands/get.js';
import { heartbeat } from './commands/heartbeat.js';
import { importCommand } from './commands/import.js';
import { ls } from './commands/ls.js';
import { mcp } from './commands/mcp.js';
import { put } from './commands/put.js';
import { register } from './commands/register.js';
import { rm } from './commands/rm.js';
import { serve } from './commands/serve.js';
import { token } from './commands/token.js';
import { update } from './commands/update.js';
import { watch } from './commands/watch.js';
import { VERSION } from '../domain/version.js';

const COMMANDS: Command[] = [
  serve, register, put, ls, get, update, rm, heartbeat, discover, watch, importCommand, exportCommand, backup, token, mcp,
];

const USAGE = `Usage: vm-registry <command> [options]

Service discovery for persistent VMs: register, heartbeat, discover by role.

Commands:
${COMMANDS.map((command) => `  ${command.name.padEnd(10)} ${command.summary}`).join('\n')}

Every command takes --help (or: vm-registry help COMMAND); vm-registry --version (-v) prints
the version. Commands that talk to a registry read VERS_INFRA_URL and VERS_AUTH_TOKEN (or --url
and --token) and print tables, or JSON with --json.
Exit codes: 0 success; 1 the registry refused or failed (an HTTP error), or nothing found;
2 usage error; 3 the registry cannot be reached.`;

const find = (name: string | undefined) => COMMANDS.find((candidate) => candidate.name === name);
function unknown(name: string): void {
  process.stderr.write(`vm-registry: unknown command "${name}"; try vm-registry --help\n`);
  process.exitCode = EXIT.usage;
}

const [name, ...rest] = process.argv.slice(2);
const command = find(name);
if (command) {
  process.exitCode = await runCommand(command, rest);
} else if (name === '--version' || name === '-v') {
  process.stdout.write(`vm-registry ${VERSION}\n`);
} else if (name === 'help' && rest.length > 0) {
  const topic = find(rest[0]);
  if (topic) process.stdout.write(`${helpText(topic)}\n`);
  else unknown(rest[0]);
} else if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
  process.stdout.write(`${USAGE}\n`);
} else {
  unknown(name);
}
