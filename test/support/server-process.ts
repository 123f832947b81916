import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export { tempDir } from '../../src/testing/fixtures.js';

/** The compiled CLI, as `vm-registry` runs it once installed. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface ServerProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything the process wrote, for assertions on logs. */
  output(): string;
  /** SIGTERM, then wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, then wait for exit. */
  kill(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  args?: string[];
  /** Node flags placed before the CLI, such as --cpu-prof when the benchmarks profile the server. */
  nodeArgs?: string[];
  /** Milliseconds to wait for the listening line. */
  timeout?: number;
  /** Another build of the CLI to start, such as the one an installed package ships. */
  cli?: string;
}

/** Runs the CLI to completion: for commands that exit, and servers that refuse to start. */
export interface RunOptions {
  env?: Record<string, string | undefined>;
  timeout?: number;
  input?: string;
  /** Sees stdout so far after each chunk: lets a test interrupt a command that runs until signalled. */
  onStdout?: (stdout: string, child: ChildProcess) => void;
  /** Run this instead of node and the CLI, such as the CLI wrapped in a pseudo-terminal. */
  command?: string[];
  /** The same for stderr, where notes such as retries go. */
  onStderr?: (stderr: string, child: ChildProcess) => void;
}

export function runCli(args: string[], options: RunOptions = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const [file, ...fileArgs] = options.command ?? [process.execPath, CLI, ...args];
    const child = spawn(file, fileArgs, {
      env: { ...process.env, LOG_LEVEL: 'warn', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      options.onStdout?.(stdout, child);
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      options.onStderr?.(stderr, child);
    });
    child.stdin.end(options.input ?? '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vm-registry ${args.join(' ')} did not exit within ${options.timeout ?? 15000} ms\n${stdout}\n${stderr}`));
    }, options.timeout ?? 15000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Starts `vm-registry serve` as a real process on a free port and resolves once it logs
 * (at LOG_LEVEL info or below: the line it waits for is an info line)
 * that it listens. The port comes from that log line, so tests never race for ports.
 */
export function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.cli ?? CLI, 'serve', ...(options.args ?? [])], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within ${options.timeout ?? 15000} ms:\n${output}`));
    }, options.timeout ?? 15000);
    // Only stdout's lines completed by this chunk are searched (stderr never splits one), so a
    // chatty server costs linear time.
    let partialLine = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      const lines = (partialLine + text).split('\n');
      partialLine = lines.pop()!;
      const line = lines.find((l) => l.includes('"vm-registry listening"'));
      if (!line) return;
      clearTimeout(timer);
      const port = (JSON.parse(line) as { port: number }).port;
      resolve({
        url: `http://127.0.0.1:${port}`,
        port,
        child,
        output: () => output,
        stop: async () => {
          if (child.exitCode === null) child.kill('SIGTERM');
          return exited;
        },
        kill: async () => {
          if (child.exitCode === null) child.kill('SIGKILL');
          await exited;
        },
      });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with code ${code} before listening:\n${output}`));
    });
  });
}
