import { parseArgs } from 'node:util';
import { RegistryClient, RegistryConfigError, RegistryError, RegistryUnreachableError } from '../client/index.js';
import { stylesFor, type Styles } from './output.js';

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
}

/** The user typed something the command cannot take; exit code 2. */
export class UsageError extends Error {}

export const EXIT = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

const CONNECTION_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string', value: 'URL', help: 'registry base URL (default: $VERS_INFRA_URL)' },
  token: { type: 'string', value: 'TOKEN', help: 'bearer token (default: $VERS_AUTH_TOKEN)' },
  json: { type: 'boolean', help: 'print JSON instead of a table' },
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
export function describeError(error: unknown): { message: string; code: number } {
  if (error instanceof UsageError) return { message: error.message, code: EXIT.usage };
  if (error instanceof RegistryConfigError) return { message: error.message, code: EXIT.usage };
  if (error instanceof RegistryError) {
    const hint =
      error.statusCode === 401
        ? '; set VERS_AUTH_TOKEN or pass --token'
        : error.statusCode === 403
          ? '; this token may not do that'
          : '';
    return { message: `${error.message} (HTTP ${error.statusCode})${hint}`, code: EXIT.failure };
  }
  if (error instanceof RegistryUnreachableError) return { message: error.message, code: EXIT.failure };
  if ((error as Error)?.name === 'AbortError') return { message: 'interrupted', code: EXIT.interrupted };
  return { message: (error as Error)?.message ?? String(error), code: EXIT.failure };
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
    const { message, code } = describeError(error);
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

/** A non-negative whole number option such as --since or --if-match. */
export function integerOption(context: Context, name: string): number | undefined {
  const text = stringOption(context, name);
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`--${name} must be a whole number (got "${text}")`);
  return Number(text);
}
