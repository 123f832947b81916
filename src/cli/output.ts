import type { RegistryEvent, Vm } from '../client/index.js';
import { ago } from '../domain/duration.js';

/** ANSI styles, or plain identity functions when the stream is not a terminal or NO_COLOR is set. */
export interface Styles {
  bold(text: string): string;
  dim(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  red(text: string): string;
  cyan(text: string): string;
}

const ansi = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`;

export function stylesFor(stream: NodeJS.WriteStream): Styles {
  const env = process.env;
  const on = env.FORCE_COLOR ? env.FORCE_COLOR !== '0' : Boolean(stream.isTTY) && !env.NO_COLOR && env.TERM !== 'dumb';
  const plain = (text: string) => text;
  return on
    ? { bold: ansi(1, 22), dim: ansi(2, 22), green: ansi(32, 39), yellow: ansi(33, 39), red: ansi(31, 39), cyan: ansi(36, 39) }
    : { bold: plain, dim: plain, green: plain, yellow: plain, red: plain, cyan: plain };
}

const visibleLength = (text: string) => text.replace(/\u001b\[\d+m/g, '').length;

/** Left-aligned columns separated by two spaces; widths ignore colour codes. */
export function table(headers: string[], rows: string[][], styles: Styles): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => visibleLength(row[column] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell + ' '.repeat(widths[column] - visibleLength(cell))))
      .join('  ')
      .trimEnd();
  return [styles.bold(line(headers)), ...rows.map(line)].join('\n');
}

export const STALE_MARK = 'stale';

/** The status, marked "(stale)" when the registry judged the VM stale. */
function statusCell(vm: Vm, styles: Styles): string {
  if (vm.stale) return styles.yellow(`${vm.status} (${STALE_MARK})`);
  if (vm.status === 'running') return styles.green(vm.status);
  return vm.status === 'paused' ? styles.yellow(vm.status) : styles.dim(vm.status);
}

/** Services as `--service` takes them: `[protocol://]name:port[/path]`, comma-separated. */
/** Each service as [protocol://]name:port[healthPath], with its health in brackets when checks are on. */
export const servicesText = (vm: Vm) =>
  (vm.services ?? [])
    .map((s) => `${s.protocol ? `${s.protocol}://` : ''}${s.name}:${s.port}${s.healthPath ?? ''}${s.health ? `(${s.health.status})` : ''}`)
    .join(',');

/** The list view: one VM per row, lastSeen relative, stale VMs marked. */
export function vmTable(vms: Vm[], styles: Styles, now = Date.now()): string {
  return table(
    ['ID', 'NAME', 'ROLE', 'STATUS', 'ADDRESS', 'SERVICES', 'LAST SEEN'],
    vms.map((vm) => [
      vm.id,
      vm.name,
      vm.role,
      statusCell(vm, styles),
      vm.address,
      servicesText(vm),
      vm.stale ? styles.yellow(ago(vm.lastSeen, now)) : ago(vm.lastSeen, now),
    ]),
    styles,
  );
}

/** The single-VM view: one field per line. */
export function vmDetail(vm: Vm, styles: Styles, now = Date.now()): string {
  const rows: [string, string][] = [
    ['id', vm.id],
    ['name', vm.name],
    ['role', vm.role],
    ['status', statusCell(vm, styles)],
    ['address', vm.address],
    ['services', servicesText(vm) || styles.dim('none')],
    ['metadata', vm.metadata ? JSON.stringify(vm.metadata) : styles.dim('none')],
    ['registeredBy', vm.registeredBy],
    ['registeredAt', `${vm.registeredAt} ${styles.dim(`(${ago(vm.registeredAt, now)})`)}`],
    ['lastSeen', `${vm.lastSeen} ${styles.dim(`(${ago(vm.lastSeen, now)})`)}`],
  ];
  const width = Math.max(...rows.map(([key]) => key.length));
  return rows.map(([key, value]) => `${styles.bold(key.padEnd(width))}  ${value}`).join('\n');
}

const EVENT_STYLE: Record<RegistryEvent['type'], keyof Styles> = {
  registered: 'green',
  recovered: 'green',
  updated: 'cyan',
  stale: 'yellow',
  deregistered: 'red',
  reaped: 'red',
};

/** One line per event for `watch`. */
export function eventLine(event: RegistryEvent, styles: Styles): string {
  const { vm } = event;
  const type = styles[EVENT_STYLE[event.type] ?? 'bold'](event.type.padEnd(12));
  const status = vm.stale ? `${vm.status} (${STALE_MARK})` : vm.status;
  return `${styles.dim(`#${event.revision}`)} ${event.at} ${type} ${vm.id} ${styles.dim(`${vm.role} ${status} ${vm.address}`)}`;
}

/** A field of a VM by dotted path ("address", "services.0.port"); objects print as JSON. */
export function fieldText(vm: Vm, path: string): string | undefined {
  let value: unknown = vm;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  if (value === undefined) return undefined;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

export const jsonText = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
