// Running commands: argv arrays only, never a shell.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

export const COMMAND_TIMEOUT_MS = 60_000;

export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to stdin, which is then closed. */
  input?: string;
  timeoutMs?: number;
  /** Throw a CommandError on a nonzero exit (default true). */
  check?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly result: RunResult,
    readonly timedOut: boolean,
  ) {
    const how = timedOut ? 'timed out' : result.signal ? `was killed by ${result.signal}` : `exited with ${result.code}`;
    const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join('\n');
    super(`\`${argv.join(' ')}\` ${how}${detail ? `: ${detail}` : ''}`);
    this.name = 'CommandError';
  }
}

export function run(file: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const { input, timeoutMs = COMMAND_TIMEOUT_MS, check = true, env, cwd } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env, cwd });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result: RunResult = { code: code ?? -1, signal, stdout, stderr };
      if (timedOut || (check && result.code !== 0)) reject(new CommandError([file, ...args], result, timedOut));
      else resolve(result);
    });
    child.stdin.end(input ?? '');
  });
}

export function netnsPath(netns: string): string {
  return `/run/netns/${netns}`;
}

/**
 * Runs argv inside a network namespace with nsenter, not `ip netns exec`: the latter remounts
 * /sys in a new mount namespace, which hides the cgroup mounts dockerd needs.
 */
export function nsExec(netns: string, argv: string[], options: RunOptions = {}): Promise<RunResult> {
  return run('nsenter', [`--net=${netnsPath(netns)}`, '--', ...argv], options);
}

/** `ip` inside a namespace (ip -n opens the namespace itself). */
export function ipIn(netns: string | null, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return run('ip', netns ? ['-n', netns, ...args] : args, options);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Thrown by a waitFor probe to stop waiting at once (the process being waited for died). */
export class WaitAborted extends Error {}

/** Polls `probe` until it returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T>(what: string, timeoutMs: number, intervalMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof WaitAborted) throw error;
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

export interface DetachedOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** stdout and stderr are appended here. */
  log: string;
}

/** Starts a daemon in its own session, outliving this process; returns its pid. */
export async function spawnDetached(argv: string[], options: DetachedOptions): Promise<number> {
  const [file, ...args] = argv;
  if (!file) throw new Error('spawnDetached needs a command');
  const log = openSync(options.log, 'a');
  try {
    const child = spawn(file, args, { detached: true, stdio: ['ignore', log, log], cwd: options.cwd, env: options.env });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', (error) => reject(new Error(`cannot start ${file}: ${error.message}`)));
      child.once('spawn', () => resolve(child.pid!));
    });
    child.unref();
    return pid;
  } finally {
    closeSync(log);
  }
}
