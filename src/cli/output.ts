import type { RegistryEvent, Vm } from '../client/index.js';
import { ago } from '../domain/duration.js';
import { servicesText } from '../tools/format.js';

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

/** Characters as a terminal counts them, near enough: code points, not UTF-16 units. */
const length = (text: string) => [...text].length;

/** The text cut to `width` characters, its last one an ellipsis when anything was cut. */
export function ellipsize(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  return width <= 0 ? '' : `${chars.slice(0, width - 1).join('')}…`;
}

/** One column of a table: what it shows of a row, and how it gives way on a narrow terminal. */
export interface Column<T> {
  header: string;
  text(row: T): string;
  /** Colour for the cell, applied after any cut so that widths count only what shows. */
  style?(row: T, styles: Styles): (text: string) => string;
  /** The narrowest this column may be cut to when the line is too long; absent: never cut. */
  min?: number;
}

const GAP = 2;

/** Column widths that fit `width`: the widest cuttable column gives up a character at a time. */
function fitWidths(natural: number[], mins: (number | undefined)[], width: number): number[] {
  const widths = [...natural];
  let total = widths.reduce((sum, w) => sum + w, 0) + GAP * (widths.length - 1);
  while (total > width) {
    let widest = -1;
    widths.forEach((w, i) => {
      const min = mins[i];
      if (min !== undefined && w > min && (widest < 0 || w > widths[widest])) widest = i;
    });
    if (widest < 0) break;
    widths[widest]--;
    total--;
  }
  return widths;
}

/**
 * Left-aligned columns two spaces apart. With a `width` (a terminal), long cells are cut
 * with an ellipsis so that no line wraps: cuttable columns shrink first, and a terminal too
 * narrow even for their minimums gets each line cut at its edge. Without one, nothing is cut.
 */
export function table<T>(columns: Column<T>[], rows: T[], styles: Styles, width?: number): string {
  const texts = rows.map((row) => columns.map((column) => column.text(row)));
  const natural = columns.map((column, i) => Math.max(length(column.header), ...texts.map((cells) => length(cells[i]))));
  const widths = width === undefined ? natural : fitWidths(natural, columns.map((column) => column.min), width);
  const line = (cells: string[], style: (column: number) => (text: string) => string) => {
    let room = width ?? Infinity;
    const parts: string[] = [];
    for (let i = 0; i < cells.length && room > 0; i++) {
      const last = i === cells.length - 1;
      const cell = ellipsize(cells[i], Math.min(widths[i], room));
      const pad = last ? '' : ' '.repeat(Math.max(0, Math.min(widths[i], room) - length(cell)));
      parts.push(style(i)(cell) + pad);
      room -= widths[i] + GAP;
    }
    return parts.join(' '.repeat(GAP)).trimEnd();
  };
  return [
    line(columns.map((column) => column.header), () => styles.bold),
    ...rows.map((row, r) => line(texts[r], (i) => columns[i].style?.(row, styles) ?? ((text) => text))),
  ].join('\n');
}

export const STALE_MARK = 'stale';

const statusText = (vm: Vm) => (vm.stale ? `${vm.status} (${STALE_MARK})` : vm.status);

/** The colour of a status: stale VMs stand out whatever their status says. */
function statusStyle(vm: Vm, styles: Styles): (text: string) => string {
  if (vm.stale) return styles.yellow;
  if (vm.status === 'running') return styles.green;
  return vm.status === 'paused' ? styles.yellow : styles.dim;
}

/** The status, marked "(stale)" when the registry judged the VM stale. */
const statusCell = (vm: Vm, styles: Styles) => statusStyle(vm, styles)(statusText(vm));

/** How a list of VMs meets the screen: a terminal's width to fit, and whether to show every column. */
export interface Layout {
  /** Characters per line; absent when stdout is not a terminal or with --wide: nothing is cut. */
  width?: number;
  /** --wide: the columns that only fit a wide screen too. */
  wide: boolean;
}

/**
 * The list view: one VM per row, lastSeen relative, stale VMs marked. On a narrow terminal
 * ids, names, addresses and services are cut (they are long and free-form); role, status
 * and last seen never are, so a marker such as "(stale)" always shows.
 */
export function vmTable(vms: Vm[], styles: Styles, layout: Layout, now = Date.now()): string {
  const columns: Column<Vm>[] = [
    { header: 'ID', text: (vm) => vm.id, min: 10 },
    { header: 'NAME', text: (vm) => vm.name, min: 6 },
    { header: 'ROLE', text: (vm) => vm.role },
    { header: 'STATUS', text: statusText, style: (vm) => statusStyle(vm, styles) },
    { header: 'ADDRESS', text: (vm) => vm.address, min: 10 },
    { header: 'SERVICES', text: servicesText, min: 6 },
    { header: 'LAST SEEN', text: (vm) => ago(vm.lastSeen, now), style: (vm) => (vm.stale ? styles.yellow : (text) => text) },
    ...(layout.wide
      ? [
          { header: 'REGISTERED BY', text: (vm: Vm) => vm.registeredBy },
          { header: 'REGISTERED', text: (vm: Vm) => ago(vm.registeredAt, now) },
          { header: 'METADATA', text: (vm: Vm) => (vm.metadata ? JSON.stringify(vm.metadata) : '') },
        ]
      : []),
  ];
  return table(columns, vms, styles, layout.width);
}

/** The single-VM view: one field per line; the revision, when known, is what --if-match takes. */
export function vmDetail(vm: Vm, styles: Styles, { revision, now = Date.now() }: { revision?: number; now?: number } = {}): string {
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
    ...(revision === undefined ? [] : [['revision', String(revision)] as [string, string]]),
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
