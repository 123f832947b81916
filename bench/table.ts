import type { BenchResults, ScenarioResult, SwarmResults, SwarmRun, SwarmSlice } from './results.js';
import { SLOW_MS } from './swarm-slices.js';

const rps = (value: number) => (value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1));
const ms = (value: number) => (value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1));
const target = (s: ScenarioResult) => ('minRatio' in s.target ? `≥ ${s.target.minRatio}` : `p99 ≤ ${s.target.maxP99Ms} ms`);

function row(s: ScenarioResult): string[] {
  if (!s.ceiling || !s.ours || s.ratio === undefined) return [s.name, 'skipped', '', '', '', '', '', target(s), ''];
  return [
    s.name,
    rps(s.ceiling.rps),
    `${ms(s.ceiling.p50)} / ${ms(s.ceiling.p99)}`,
    rps(s.ours.rps),
    `${ms(s.ours.p50)} / ${ms(s.ours.p99)}`,
    s.ratio.toFixed(2),
    String(s.ours.failed + s.ceiling.failed),
    target(s),
    s.met ? 'met' : 'MISSED',
  ];
}

/**
 * With --pg: the read scenarios on the PostgreSQL replica beside the embedded store's, each as
 * its ratio to the ceiling measured in the same run, and the database's CPU meanwhile.
 */
/** Rows (the header first) as the lines of a Markdown table, each column as wide as its widest cell. */
export function markdownTable(rows: string[][]): string[] {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((r) => r[column].length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  return [line(rows[0]), line(widths.map((w) => '-'.repeat(w))), ...rows.slice(1).map(line)];
}

function comparison(results: BenchResults): string[] {
  if (!results.embedded) return [];
  const header = ['read scenario', 'embedded rps', 'embedded ratio', 'PG replica rps', 'PG replica ratio', 'replica / embedded', 'database CPU'];
  const rows = [header];
  for (const embedded of results.embedded) {
    const replica = results.scenarios.find((s) => s.name === embedded.name);
    if (!replica?.ratio || !replica.ours || !embedded.ratio || !embedded.ours) continue;
    rows.push([
      embedded.name,
      rps(embedded.ours.rps),
      embedded.ratio.toFixed(2),
      rps(replica.ours.rps),
      replica.ratio.toFixed(2),
      (replica.ratio / embedded.ratio).toFixed(2),
      replica.databaseCpuPercent === undefined ? '' : `${replica.databaseCpuPercent.toFixed(1)} % of a core`,
    ]);
  }
  return ['', 'a PostgreSQL replica against the embedded store (each as its ratio to the ceiling of its own runs):', '', ...markdownTable(rows)];
}

/** The results as a Markdown table (readable in a terminal too), with the figures around it. */
export function formatResults(results: BenchResults): string {
  const header = ['scenario', 'ceiling rps', 'ceiling p50 / p99 ms', 'ours rps', 'ours p50 / p99 ms', 'ratio', 'failed', 'target', ''];
  const rows = [header, ...results.scenarios.map(row)];
  const { machine, preload, rssMb, restart, options } = results;
  const skipped = results.scenarios.filter((s) => s.skipped).map((s) => `- ${s.name}: ${s.skipped}`);
  return [
    `vm-registry ${machine.commit}, N = ${options.n.toLocaleString('en-US')} VMs, ${options.connections} connections, ` +
      `${options.runs} × ${options.duration} s per contender, alternating`,
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GB, node ${machine.node}, ${machine.platform}`,
    '',
    ...markdownTable(rows),
    '',
    ...(skipped.length ? [...skipped, ''] : []),
    `preload: ${preload.n.toLocaleString('en-US')} registrations in ${preload.seconds.toFixed(1)} s = ${rps(preload.perSecond)}/s`,
    `server RSS: ${rssMb.empty} MB empty, ${rssMb.preloaded} MB after preload` +
      (rssMb.settled === undefined ? '' : ` (${rssMb.settled} MB holding them after a restart, idle ${Math.round(rssMb.settledAfterSeconds ?? 0)} s)`) +
      `, ${rssMb.afterScenarios} MB after the scenarios (peak ${rssMb.peak} MB)`,
    `restart with ${restart.vms.toLocaleString('en-US')} VMs on disk: listening after ${Math.round(restart.listeningMs)} ms, ` +
      `first discover answered after ${Math.round(restart.firstDiscoverMs)} ms`,
    ...comparison(results),
  ].join('\n');
}

type Row = [label: string, figure: (run: SwarmRun) => number | undefined];

const SWARM_ROWS: Row[] = [
  ['server CPU, % of one core', (r) => r.cpuPercent],
  ['CPU per operation of the mix, ms', (r) => r.cpuMsPerOperation],
  ['server RSS, MB', (r) => r.rssMb],
  ['database PSS, MB', (r) => r.databaseMb],
  ['heartbeat p50, ms', (r) => r.latency?.heartbeat.p50],
  ['heartbeat p99, ms', (r) => r.latency?.heartbeat.p99],
  ['register p50, ms', (r) => r.latency?.register.p50],
  ['register p99, ms', (r) => r.latency?.register.p99],
  ['discover p50, ms', (r) => r.latency?.discover.p50],
  ['discover p99, ms', (r) => r.latency?.discover.p99],
  ['event lag p50, ms', (r) => r.eventLag?.p50],
  ['event lag p99, ms', (r) => r.eventLag?.p99],
  ['blocking wake-ups per change', (r) => r.blocking?.perChange],
  ['wake-ups with nothing new (client)', (r) => r.blocking?.unchanged],
  ['server event loop delay p99 (worst 5 s slice), ms', (r) => r.serverLoopDelay?.p99Ms],
  ['server event loop delay max, ms', (r) => r.serverLoopDelay?.maxMs],
];

const figure = (value: number) => (value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(value >= 10 ? 1 : 2));

/** The swarm's figures, one column per contender, ours with its ratio to etcd's where etcd ran. */
export function formatSwarm(results: SwarmResults): string {
  const measured = results.runs.filter((r) => !r.skipped);
  const etcd = measured.find((r) => r.contender.startsWith('etcd'));
  const cell = (run: SwarmRun, [, pick]: Row) => {
    const value = pick(run);
    if (value === undefined) return 'n/a';
    const peer = etcd && run !== etcd ? pick(etcd) : undefined;
    return peer ? `${figure(value)} (${(value / peer).toFixed(2)}×)` : figure(value);
  };
  const errors = (run: SwarmRun) => Object.values(run.errors ?? {}).reduce((sum, count) => sum + count, 0);
  const serverWakeups = (run: SwarmRun) =>
    run.blocking?.server ? `${run.blocking.server.wakeups} / ${run.blocking.server.unchanged}` : run.contender.startsWith('etcd') ? '–' : 'n/a';
  const header = ['', ...measured.map((r) => r.contender)];
  const rows = [
    header,
    ...SWARM_ROWS.map((row) => [row[0], ...measured.map((run) => cell(run, row))]),
    ['wake-ups / with nothing new (server metrics)', ...measured.map(serverWakeups)],
    ['errors (429, 503, refused watchers, event gaps)', ...measured.map((run) => String(errors(run)))],
    [
      'load generator CPU, % of one core (busiest thread’s loop)',
      ...measured.map((run) => (run.generator ? `${figure(run.generator.cpuPercent)} (${Math.round(run.generator.busiestLoopPercent)}%)` : 'n/a')),
    ],
  ];
  const { machine, options } = results;
  const notes = results.runs.flatMap((run) => [
    ...(run.skipped ? [`- ${run.contender}: skipped, ${run.skipped}`] : []),
    ...Object.entries(run.errors ?? {}).map(([kind, count]) => `- ${run.contender}: ${count} × ${kind}`),
    ...(run.preload && run.sent
      ? [
          `- ${run.contender}: preloaded at ${Math.round(run.preload.perSecond)}/s; in ${run.seconds?.toFixed(0)} s sent ` +
            Object.entries(run.sent).map(([kind, count]) => `${count} ${kind}`).join(', ') +
            `; ${run.eventLag?.count} of ${run.eventLag?.expected} event deliveries`,
        ]
      : []),
  ]);
  return [
    `swarm: vm-registry ${machine.commit}, N = ${options.vms.toLocaleString('en-US')} VMs, ${options.seconds} s of the mix`,
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GB, node ${machine.node}, ${machine.platform}`,
    '',
    ...markdownTable(rows),
    '',
    ...notes,
    ...measured.flatMap((run) => (run.slices ? ['', ...formatSlices(run.contender, run.slices)] : [])),
  ].join('\n');
}

const optional = (value: number | undefined) => (value === undefined ? 'n/a' : ms(value));

/** One contender's mix slice by slice (bench/swarm-slices.ts). */
function formatSlices(contender: string, slices: SwarmSlice[]): string[] {
  const rows = [
    [
      's',
      'heartbeats',
      'heartbeat p99 / max, ms',
      `heartbeats > ${SLOW_MS} ms: client / server`,
      'register max, ms',
      'discover max, ms',
      'server CPU, %',
      'server RSS, MB',
      'server loop delay max, ms',
      'listen overflows (machine)',
      'generator lag max, ms',
    ],
    ...slices.map((s) => [
      `${s.fromSeconds}–${s.toSeconds}`,
      String(s.heartbeats),
      `${ms(s.heartbeat.p99)} / ${ms(s.heartbeat.max)}`,
      `${s.slowAtClient} / ${s.slowAtServer ?? 'n/a'}`,
      ms(s.registerMaxMs),
      ms(s.discoverMaxMs),
      String(Math.round(s.serverCpuPercent)),
      String(Math.round(s.serverRssMb)),
      optional(s.serverLoopDelayMaxMs),
      s.listenOverflows === undefined ? 'n/a' : String(s.listenOverflows),
      ms(s.generatorLagMaxMs),
    ]),
  ];
  return [`${contender}, slice by slice (each request in the slice it was sent in):`, '', ...markdownTable(rows)];
}
