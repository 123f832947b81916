import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { residentMb } from './registry.js';

/**
 * CPU and memory of the processes a contender runs as, from /proc (Linux): the node server,
 * the PostgreSQL cluster behind it, etcd. Measured from outside, so that every contender is
 * measured the same way.
 */

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** Fields of /proc/<pid>/stat after the command name, which may itself hold spaces. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds a process has used, with those of its children it has reaped (a PostgreSQL
 * backend that exited is counted by the postmaster that waited for it).
 */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  if (!fields) return 0;
  // utime, stime, cutime, cstime: fields 14–17 of stat, 12–15 after the command name.
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return ticks / TICKS_PER_SECOND;
}

/** Proportional memory (PSS) in MB: shared pages split among their sharers, so processes add up. */
export function proportionalMb(pid: number): number {
  try {
    const kb = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1];
    return kb === undefined ? 0 : Number(kb) / 1024;
  } catch {
    return 0;
  }
}

/** The postmaster listening on `port` and its live children (backends, walwriter, …). */
export function postgresProcesses(port: number): number[] {
  const pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
  const postmaster = pids.find((pid) => {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return args[0].endsWith('/postgres') && args.includes('-p') && args[args.indexOf('-p') + 1] === String(port);
    } catch {
      return false;
    }
  });
  if (postmaster === undefined) return [];
  return [postmaster, ...pids.filter((pid) => statFields(pid)?.[1] === String(postmaster))];
}

export interface Usage {
  cpuSeconds: number;
  /** Resident memory of the server processes (node, etcd), MB. */
  rssMb: number;
  /** PSS of the database's processes, MB; 0 when there is none. */
  databaseMb: number;
}

/** What `servers` and `database` (processes counted apart, such as PostgreSQL's) use now. */
export function usage(servers: number[], database: number[] = []): Usage {
  return {
    cpuSeconds: [...servers, ...database].reduce((sum, pid) => sum + cpuSeconds(pid), 0),
    rssMb: servers.reduce((sum, pid) => sum + (residentMb(pid) ?? 0), 0),
    databaseMb: Math.round(database.reduce((sum, pid) => sum + proportionalMb(pid), 0)),
  };
}
