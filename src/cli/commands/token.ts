import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readTokensFile, SCOPES, sha256Hex, TokensFileError, type Scope, type TokenEntry } from '../../server/http/tokens.js';
import { listOption, stringOption, UsageError, type Command } from '../command.js';
import { jsonText } from '../output.js';

/**
 * Adds the entry to the tokens file without ever leaving it half-written: the new content
 * goes to a temporary file beside it (0600, since it names who may do what), is flushed,
 * and replaces the old file in one rename, so a server reloading at that instant reads
 * either the old list or the new one.
 */
function appendEntry(file: string, entry: TokenEntry): void {
  let entries: TokenEntry[] = [];
  try {
    if (existsSync(file)) entries = readTokensFile(file);
  } catch (error) {
    if (error instanceof TokensFileError) throw new UsageError(`${error.message}; fix it before adding to it`);
    throw error;
  }
  if (entries.some((existing) => existing.name === entry.name)) {
    throw new UsageError(`${file} already holds a token named "${entry.name}": choose another --name, or remove that entry first`);
  }
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, jsonText({ tokens: [...entries, entry] }));
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temp, file);
  const dir = openSync(dirname(file), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * SIGHUP makes a server with a tokens file reload it; any other process it would end.
 * Where /proc shows command lines (Linux), a process that is not `vm-registry serve` is
 * refused, before anything is written, rather than killed by a mistyped PID.
 */
function serverPid(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`--reload takes the PID of the server (got "${text}")`);
  const pid = Number(text);
  let args: string[] | undefined;
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    // No /proc (not Linux), or no such process: kill() says which.
  }
  if (args && !args.includes('serve')) throw new UsageError(`process ${pid} is not vm-registry serve; not signalling it`);
  return pid;
}

function reload(pid: number): void {
  try {
    process.kill(pid, 'SIGHUP');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`cannot signal process ${pid} (${code === 'ESRCH' ? 'no such process' : code}); the entry was written, reload the server yourself`);
  }
}

/**
 * `vm-registry token create`: mints a secret for REGISTRY_TOKENS_FILE. The secret is shown
 * once and never stored; the file only ever holds its SHA-256 digest.
 */
export const token: Command = {
  name: 'token',
  summary: 'Create a scoped token: prints the secret once and the entry for REGISTRY_TOKENS_FILE.',
  args: 'create',
  details:
    'Without --write, add the printed entry to the "tokens" array of the tokens file yourself, then\n' +
    'send the server SIGHUP (kill -HUP PID) or restart it. --write FILE adds it for you (creating\n' +
    'the file if needed, replacing it atomically, mode 0600), and --reload PID then sends that\n' +
    'SIGHUP; repeat --reload for each server on this machine that reads FILE. Give the secret to\n' +
    'its holder as their VERS_AUTH_TOKEN.',
  positionals: { min: 1, max: 1 },
  options: {
    name: { type: 'string', value: 'NAME', help: 'who holds the token, such as worker-pool (letters, digits, . _ : @ -)' },
    scopes: { type: 'string', value: 'LIST', help: `comma-separated: ${SCOPES.join(', ')} (default read)` },
    write: { type: 'string', value: 'FILE', help: 'add the entry to this tokens file' },
    reload: { type: 'string', multiple: true, value: 'PID', help: 'after --write, tell the server with this PID to reload it (SIGHUP)' },
    json: { type: 'boolean', help: 'print {secret, entry} as JSON' },
  },
  async run(context) {
    if (context.positionals[0] !== 'create') throw new UsageError(`unknown token action "${context.positionals[0]}"; try: token create`);
    const name = context.values.name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9._:@-]{1,128}$/.test(name)) {
      throw new UsageError('--name is required: 1-128 letters, digits, ".", "_", ":", "@" or "-"');
    }
    const scopes = String(context.values.scopes ?? 'read').split(',').map((scope) => scope.trim());
    const unknown = scopes.filter((scope) => !(SCOPES as readonly string[]).includes(scope));
    if (unknown.length > 0 || scopes.length === 0) {
      throw new UsageError(`--scopes takes ${SCOPES.join(', ')} (got ${unknown.join(', ') || 'nothing'})`);
    }
    const file = stringOption(context, 'write');
    const pids = listOption(context, 'reload').map(serverPid);
    if (pids.length > 0 && file === undefined) throw new UsageError('--reload needs --write FILE: it reloads the file written');
    const secret = `vmr_${randomBytes(24).toString('base64url')}`;
    const entry = { name, sha256: sha256Hex(secret), scopes: [...new Set(scopes)] as Scope[] };
    if (file !== undefined) appendEntry(file, entry);
    // The secret is printed before any signal is sent: a failed reload must not lose it.
    if (context.json) context.print(jsonText({ secret, entry }).trimEnd());
    else {
      context.print(`secret (shown once; give it to "${name}" as VERS_AUTH_TOKEN):\n  ${secret}`);
      if (file === undefined) context.print(`\nentry for the "tokens" array of REGISTRY_TOKENS_FILE:\n  ${JSON.stringify(entry)}`);
    }
    if (file === undefined) return;
    context.note(`added "${name}" to ${file}`);
    for (const pid of pids) {
      reload(pid);
      context.note(`asked the server (process ${pid}) to reload ${file}`);
    }
    if (pids.length === 0) context.note('the server reads it again on SIGHUP: kill -HUP PID, or pass --reload PID');
  },
};
