// How drivers start processes: argv arrays through execa, never a shell. A Runner is injectable
// so tests can script outputs, and can be pointed into a network namespace.
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { validateCommand, type CommandResult } from '@crossdock/shared';

export const PROCESS_TIMEOUT_MS = 60_000;

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
  return async (argv, runOptions = {}) => {
    const [file, ...args] = [...prefix, ...argv];
    if (file === undefined) throw new Error('empty argv');
    const started = performance.now();
    const result = await execa(file, args, {
      input: runOptions.input ?? '',
      reject: false,
      timeout: runOptions.timeoutMs ?? PROCESS_TIMEOUT_MS,
      stripFinalNewline: false,
      // Messages we parse (ip, iptables-restore) must not be translated.
      env: { LC_ALL: 'C' },
    });
    const durationMs = Math.round(performance.now() - started);
    // A binary that is missing or a process that was killed has no exit code; say why.
    const why = result.exitCode === undefined ? `${result.shortMessage}\n` : '';
    return {
      ok: result.exitCode === 0,
      exitCode: result.exitCode ?? null,
      stdout: result.stdout,
      stderr: result.stderr + why,
      durationMs,
    };
  };
}

export function resolveRunner(options: DriverOptions): Runner {
  return options.runner ?? createRunner(options.netns === undefined ? {} : { netns: options.netns });
}

/** A result for work that ran no process (an API call, a refusal, nothing to do). */
export function resultWithoutProcess(ok: boolean, stdout: string, stderr: string, started: number): CommandResult {
  return { ok, exitCode: null, stdout, stderr, durationMs: Math.round(performance.now() - started) };
}

/** Drivers re-check what they are handed, whatever the caller did: the first problem, or null. */
export function firstInvalid(commands: readonly unknown[]): string | null {
  for (const command of commands) {
    const checked = validateCommand(command);
    if (!checked.ok) return checked.error;
  }
  return null;
}
