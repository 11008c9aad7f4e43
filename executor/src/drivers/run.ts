// How drivers start processes: argv arrays through child_process.spawn, never a shell. A Runner
// is injectable so tests can script outputs, and can be pointed into a network namespace.
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { validateCommand, type Command, type CommandResult } from '@crossdock/shared';

export const PROCESS_TIMEOUT_MS = 60_000;
/** After the timeout's SIGTERM, how long a process gets before SIGKILL. */
const KILL_GRACE_MS = 5_000;
/** Output kept per stream; a process printing more is killed (iptables-save of a huge table is far less). */
const MAX_OUTPUT_CHARS = 100 * 2 ** 20;

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
}

export type Runner = (argv: readonly string[], options?: RunOptions) => Promise<CommandResult>;

export interface DriverOptions {
  /** Run every process in this network namespace (`/run/netns/<name>`), for tests and the lab. */
  netns?: string;
  /** Replaces process execution entirely (unit tests). */
  runner?: Runner;
}

/** `nsenter --net`, not `ip netns exec`: the latter remounts /sys, which dockerd and friends need. */
export function netnsPrefix(netns: string): string[] {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(netns) || netns === '.' || netns === '..') {
    throw new Error(`"${netns}" is not a network namespace name; use letters, digits, ".", "_" and "-"`);
  }
  return ['nsenter', `--net=/run/netns/${netns}`];
}

export function createRunner(options: { netns?: string } = {}): Runner {
  const prefix = options.netns === undefined ? [] : netnsPrefix(options.netns);
  // Plain spawn, not execa: execa's per-process machinery cost about 5 ms a process here,
  // as much as starting nsenter and iptables-save themselves (bench/apply.ts).
  return (argv, runOptions = {}) => {
    const [file, ...args] = [...prefix, ...argv];
    if (file === undefined) return Promise.reject(new Error('empty argv'));
    const timeoutMs = runOptions.timeoutMs ?? PROCESS_TIMEOUT_MS;
    return new Promise((resolve) => {
      const started = performance.now();
      // Messages we parse (ip, iptables-restore) must not be translated.
      const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
      let stdout = '';
      let stderr = '';
      let why = '';
      let settled = false;
      const kill = (reason: string) => {
        if (why === '') why = reason;
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS).unref();
      };
      const collect = (stream: 'stdout' | 'stderr') => (chunk: string) => {
        if (stream === 'stdout') stdout += chunk;
        else stderr += chunk;
        if (stdout.length + stderr.length > MAX_OUTPUT_CHARS) kill(`${argv.join(' ')} printed more than ${MAX_OUTPUT_CHARS} characters and was killed`);
      };
      child.stdout.setEncoding('utf8').on('data', collect('stdout'));
      child.stderr.setEncoding('utf8').on('data', collect('stderr'));
      // A process may exit without reading all of its input: its exit status tells what happened.
      child.stdin.on('error', () => {});
      const timer = setTimeout(() => kill(`${argv.join(' ')} timed out after ${timeoutMs} ms and was killed`), timeoutMs);
      const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        // A binary that is missing or a process that was killed has no exit code; say why.
        if (exitCode === null && why === '') why = `${argv.join(' ')} was killed by ${signal ?? 'a signal'}`;
        resolve({
          ok: exitCode === 0 && why === '',
          exitCode: why === '' ? exitCode : null,
          stdout,
          stderr: why === '' ? stderr : `${stderr}${why}\n`,
          durationMs: Math.round(performance.now() - started),
        });
      };
      child.on('error', (error) => {
        why = `cannot run ${file}: ${error.message}`;
        finish(null, null);
      });
      child.on('close', finish);
      child.stdin.end(runOptions.input ?? '');
    });
  };
}

export function resolveRunner(options: DriverOptions): Runner {
  return options.runner ?? createRunner(options.netns === undefined ? {} : { netns: options.netns });
}

/** A result for work that ran no process (an API call, a refusal, nothing to do). */
export function resultWithoutProcess(ok: boolean, stdout: string, stderr: string, started: number): CommandResult {
  return { ok, exitCode: null, stdout, stderr, durationMs: Math.round(performance.now() - started) };
}

/**
 * Commands that passed validateCommand and were deep-frozen right after (sealValidated): they
 * cannot have changed since, so checking them again would find nothing. runJob validates a whole
 * job before running any of it; without this every route was validated twice (about half of a
 * 10,000-route job's own time).
 */
const sealed = new WeakSet<object>();

/** Freezes each validated command, deeply, and remembers it as valid. Only for commands validateCommand accepted. */
export function sealValidated(commands: readonly Command[]): void {
  for (const command of commands) {
    deepFreeze(command);
    sealed.add(command);
  }
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  // Validated commands are plain JSON-shaped data: no cycles.
  for (const inner of Object.values(value)) deepFreeze(inner);
  Object.freeze(value);
}

/** Drivers re-check what they are handed, whatever the caller did: the first problem, or null. */
export function firstInvalid(commands: readonly unknown[]): string | null {
  for (const command of commands) {
    if (typeof command === 'object' && command !== null && sealed.has(command)) continue;
    const checked = validateCommand(command);
    if (!checked.ok) return checked.error;
  }
  return null;
}
