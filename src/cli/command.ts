import { parseArgs } from 'node:util';
import { RegistryClient, RegistryConfigError, RegistryError, RegistryUnreachableError } from '../client/index.js';
import { stylesFor, type Layout, type Styles } from './output.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Placeholder shown in help, such as ROLE. */
  value?: string;
  help: string;
}

export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface Context {
  values: Values;
  positionals: string[];
  /** Built on first use, so that --help and usage errors never need VERS_INFRA_URL. */
  client(): RegistryClient;
  json: boolean;
  styles: Styles;
  /** How tables meet stdout: fitted to a terminal, plain on a pipe, everything with --wide. */
  layout: Layout;
  /** Aborted by SIGINT or SIGTERM: long-running commands end cleanly on it. */
  signal: AbortSignal;
  print(text: string): void;
  /** Notes for people (progress, warnings), on stderr so that stdout stays parseable. */
  note(text: string): void;
}

export interface Command {
  name: string;
  summary: string;
  /** Arguments after the command name, as help shows them: "ID [ID...]". */
  args?: string;
  /** Paragraphs after the usage line. */
  details?: string;
  options?: Record<string, OptionSpec>;
  /** How many positional arguments the command takes. */
  positionals?: { min: number; max: number };
  /** Talks to a registry: gets --url, --token and --json. */
  connects?: boolean;
  /** Returns the exit code; nothing means success. */
  run(context: Context): Promise<number | void>;
  /**
   * Says in this command's terms what the registry refused, such as "use vm-registry put"
   * for a 409, where the server's own message speaks HTTP; undefined keeps the server's.
   */
  explain?(error: RegistryError, context: Context): string | undefined;
}

/** The user typed something the command cannot take; exit code 2. */
export class UsageError extends Error {}

/** Exit codes, as the README documents them: scripts tell a refusal from a registry they cannot reach. */
export const EXIT = { ok: 0, failure: 1, usage: 2, unreachable: 3, interrupted: 130 } as const;

const CONNECTION_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string', value: 'URL', help: 'registry base URL (default: $VERS_INFRA_URL)' },
  token: { type: 'string', value: 'TOKEN', help: 'bearer token (default: $VERS_AUTH_TOKEN)' },
  json: { type: 'boolean', help: 'print JSON instead of a table' },
};

/** For commands that print a table of VMs. */
export const WIDE_OPTION: Record<string, OptionSpec> = {
  wide: { type: 'boolean', help: 'every column, nothing cut to fit the terminal' },
};
const HELP_OPTION: Record<string, OptionSpec> = { help: { type: 'boolean', short: 'h', help: 'show this help' } };

function allOptions(command: Command): Record<string, OptionSpec> {
  return { ...command.options, ...(command.connects && CONNECTION_OPTIONS), ...HELP_OPTION };
}

export function helpText(command: Command): string {
  const options = Object.entries(allOptions(command)).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.value ? ` ${spec.value}` : ''}`;
    return `  ${flag.padEnd(28)} ${spec.help}${spec.multiple ? ' (repeatable)' : ''}`;
  });
  return [
    `Usage: vm-registry ${command.name}${command.args ? ` ${command.args}` : ''} [options]`,
    '',
    command.summary,
    ...(command.details ? ['', command.details] : []),
    '',
    'Options:',
    ...options,
  ].join('\n');
}

/** One line a person can act on; never a stack trace. */
export function describeError(error: unknown, explain?: (error: RegistryError) => string | undefined): { message: string; code: number } {
  if (error instanceof UsageError) return { message: error.message, code: EXIT.usage };
  if (error instanceof RegistryConfigError) return { message: error.message, code: EXIT.usage };
  if (error instanceof RegistryError) {
    const explained = explain?.(error);
    if (explained !== undefined) return { message: `${explained} (HTTP ${error.statusCode})`, code: EXIT.failure };
    const hint =
      error.statusCode === 401
        ? '; set VERS_AUTH_TOKEN or pass --token'
        : error.statusCode === 403
          ? '; this token may not do that'
          : '';
    return { message: `${error.message} (HTTP ${error.statusCode})${hint}`, code: EXIT.failure };
  }
  if (error instanceof RegistryUnreachableError) return { message: error.message, code: EXIT.unreachable };
  if ((error as Error)?.name === 'AbortError') return { message: 'interrupted', code: EXIT.interrupted };
  return { message: (error as Error)?.message ?? String(error), code: EXIT.failure };
}

/**
 * The width to fit tables to, or undefined when stdout is not a terminal: piped output is
 * never cut. COLUMNS, when set, wins over the terminal's own size (as in most tools), so a
 * person can ask for a narrower or wider table.
 */
function terminalWidth(stream: NodeJS.WriteStream): number | undefined {
  if (!stream.isTTY) return undefined;
  const columns = Number(process.env.COLUMNS);
  if (Number.isInteger(columns) && columns > 0) return columns;
  return stream.columns > 0 ? stream.columns : 80;
}

/** Parses the arguments, handles --help, runs the command and turns any failure into an exit code. */
export async function runCommand(command: Command, args: string[]): Promise<number> {
  const stdout = process.stdout;
  const stderr = process.stderr;
  const fail = (message: string, code: number) => {
    stderr.write(`vm-registry ${command.name}: ${message}\n`);
    return code;
  };

  let values: Values;
  let positionals: string[];
  try {
    const options = Object.fromEntries(
      Object.entries(allOptions(command)).map(([name, { type, short, multiple }]) => [
        name,
        { type, ...(short && { short }), ...(multiple && { multiple }) },
      ]),
    );
    ({ values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true }));
  } catch (error) {
    return fail(`${(error as Error).message}; see vm-registry ${command.name} --help`, EXIT.usage);
  }
  if (values.help) {
    stdout.write(`${helpText(command)}\n`);
    return EXIT.ok;
  }
  const { min, max } = command.positionals ?? { min: 0, max: 0 };
  if (positionals.length < min || positionals.length > max) {
    const expected = command.args ? `expects ${command.args}` : 'takes no arguments';
    return fail(`${command.name} ${expected}; see vm-registry ${command.name} --help`, EXIT.usage);
  }

  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let client: RegistryClient | undefined;
  const context: Context = {
    values,
    positionals,
    client: () =>
      (client ??= new RegistryClient({
        ...(typeof values.url === 'string' && { url: values.url }),
        ...(typeof values.token === 'string' && { token: values.token }),
      })),
    json: values.json === true,
    styles: stylesFor(stdout),
    layout: { width: values.wide === true ? undefined : terminalWidth(stdout), wide: values.wide === true },
    signal: interrupt.signal,
    print: (text) => {
      stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    note: (text) => {
      stderr.write(`${text}\n`);
    },
  };
  try {
    return (await command.run(context)) ?? EXIT.ok;
  } catch (error) {
    if (process.env.VM_REGISTRY_DEBUG) stderr.write(`${(error as Error)?.stack ?? error}\n`);
    const { message, code } = describeError(error, command.explain && ((refusal) => command.explain!(refusal, context)));
    return fail(message, code);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The one positional argument a command declared. */
export const argument = (context: Context, index = 0) => context.positionals[index]!;

export function stringOption(context: Context, name: string): string | undefined {
  const value = context.values[name];
  return typeof value === 'string' ? value : undefined;
}

export function listOption(context: Context, name: string): string[] {
  const value = context.values[name];
  return Array.isArray(value) ? (value as string[]) : [];
}

/** A value from a fixed list, such as a role: a typo is a usage error that names the list. */
export function choice<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${what} must be one of ${allowed.join(', ')} (got "${value}")`);
}

export function choiceOption<T extends string>(context: Context, name: string, allowed: readonly T[]): T | undefined {
  const text = stringOption(context, name);
  return text === undefined ? undefined : choice(text, allowed, `--${name}`);
}

/** A 412 in the terms of --if-match, for the commands that take it with the VM's id first. */
export function explainIfMatch(error: RegistryError, context: Context): string | undefined {
  if (error.statusCode !== 412) return undefined;
  const id = argument(context);
  return `VM "${id}" has changed since revision ${stringOption(context, 'if-match')} (--if-match), so nothing was written; see its revision with vm-registry get ${id}`;
}

/** A non-negative whole number option such as --since or --if-match. */
export function integerOption(context: Context, name: string): number | undefined {
  const text = stringOption(context, name);
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`--${name} must be a whole number (got "${text}")`);
  return Number(text);
}
