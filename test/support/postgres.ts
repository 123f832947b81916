import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { tempDir } from './server-process.js';

/**
 * A throwaway PostgreSQL cluster of the machine's own PostgreSQL, on a random loopback port
 * with its socket and data in a temporary directory. A machine without PostgreSQL fails the
 * tests that need it: CI installs it (.ci/run), it is never skipped.
 */
export interface PostgresCluster {
  port: number;
  /** A connection URL for the database of that name (`postgres` by default). */
  url(database?: string): string;
  /** Creates an empty database and answers its URL. */
  createDatabase(name: string): Promise<string>;
  /** `pg_ctl stop -m fast`: an outage as clients see one. */
  stop(): void;
  start(): void;
  /** Stops the cluster at once and deletes its files. */
  destroy(): void;
  /** The postmaster's process id (its children are the cluster's other processes). */
  postmasterPid(): number;
}

/** Where initdb and pg_ctl live: pg_config's answer, else the newest Debian install, else PATH. */
export function postgresBinDir(): string {
  const candidates: string[] = [];
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    // No pg_config (it comes with the client packages): look where Debian installs servers.
  }
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => join(debian, v, 'bin')));
  }
  candidates.push(...(process.env.PATH ?? '').split(':'));
  const found = candidates.find((dir) => dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')));
  if (!found) {
    throw new Error(
      'PostgreSQL is not installed (no initdb and pg_ctl found via pg_config, /usr/lib/postgresql/*/bin or PATH); ' +
        'install it (apt-get install postgresql): the PostgreSQL tests need a real server',
    );
  }
  return found;
}

/** A loopback port nobody listens on right now, for servers that must be told theirs. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * PostgreSQL refuses to run as root: as root, its tools run as the postgres user, who must
 * own the cluster's directories. Answers the command line to spawn, and that owner.
 */
function clusterOwner(): { commandLine(command: string, args: string[]): [string, string[]]; uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return { commandLine: (command, args) => [command, args] };
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return {
    commandLine: (command, args) => ['runuser', ['-u', 'postgres', '--', command, ...args]],
    uid: id('-u'),
    gid: id('-g'),
  };
}

function describeFailure(error: unknown): string {
  const failure = error as { message: string; stderr?: Buffer; stdout?: Buffer };
  return [failure.message, failure.stdout?.toString(), failure.stderr?.toString()].filter(Boolean).join('\n');
}

export async function startPostgres(): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  const owner = clusterOwner();
  const run = (command: string, args: string[]) => void execFileSync(...owner.commandLine(command, args), { stdio: 'pipe' });
  const dir = tempDir('vm-registry-pg-');
  // The postgres user must reach its directories inside the test's private temporary directory.
  chmodSync(dir.path, 0o755);
  const data = join(dir.path, 'data');
  const socket = join(dir.path, 'socket');
  for (const path of [data, socket]) {
    mkdirSync(path, { mode: 0o700 });
    if (owner.uid !== undefined) chownSync(path, owner.uid, owner.gid!);
  }
  const port = await freePort();
  const pgCtl = join(bin, 'pg_ctl');
  const options = [
    `-p ${port}`,
    `-k ${socket}`,
    '-c listen_addresses=127.0.0.1',
    // A test cluster: speed over surviving a power cut.
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c max_connections=200',
  ].join(' ');
  const start = () => run(pgCtl, ['start', '-w', '-t', '60', '-D', data, '-l', join(socket, 'postgres.log'), '-o', options]);
  // Synchronous, so that it also works from an exit handler.
  const stopNow = () => spawnSync(...owner.commandLine(pgCtl, ['stop', '-m', 'immediate', '-D', data]), { stdio: 'ignore' });

  let destroyed = false;
  // A test process that dies without running its after() hooks must not leave a server behind.
  const onExit = () => {
    if (!destroyed) stopNow();
  };
  process.once('exit', onExit);
  try {
    run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync']);
    start();
  } catch (error) {
    stopNow();
    dir.remove();
    process.off('exit', onExit);
    throw new Error(`could not start a test PostgreSQL cluster with ${bin}: ${describeFailure(error)}`);
  }

  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    port,
    url,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    stop: () => run(pgCtl, ['stop', '-w', '-m', 'fast', '-D', data]),
    postmasterPid: () => Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]),
    start,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      process.off('exit', onExit);
      stopNow();
      dir.remove();
    },
  };
}
