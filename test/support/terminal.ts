import { spawnSync } from 'node:child_process';
import { CLI, runCli, type RunOptions } from './server-process.js';

/** util-linux `script`, which runs a command on a real pseudo-terminal. */
export const hasScript = spawnSync('script', ['--version']).status === 0;

const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/**
 * Runs the CLI with its stdout on a pseudo-terminal, as a person sees it. `stty` sets the
 * terminal's own width when asked, so the CLI's reading of the real window size is tested
 * too, not only COLUMNS. Output comes back with the terminal's \r\n made \n.
 */
export async function runCliOnTerminal(args: string[], options: RunOptions & { stty?: string } = {}) {
  const command = `${options.stty ? `stty ${options.stty} && ` : ''}exec ${quote(process.execPath)} ${quote(CLI)} ${args.map(quote).join(' ')}`;
  const result = await runCli([], { ...options, command: ['script', '-qec', command, '/dev/null'] });
  return { ...result, stdout: result.stdout.replace(/\r\n/g, '\n') };
}

/** The characters a line shows: colour codes left out, code points counted. */
export const shownWidth = (line: string) => [...line.replace(/\u001b\[[0-9;]*m/g, '')].length;
