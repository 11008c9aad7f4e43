// Watches: how the drivers learn of a change on the host the moment it happens, instead of at
// the next periodic report. Each driver's watch() calls onChange for every change that may
// touch what crossdock keeps (the caller debounces, observes and compares digests, so a false
// alarm costs one observation, never a job). The monitors are long-running processes started
// with an argv (never a shell), restarted with a delay if they exit, and stopped with stop().
import { spawn, type ChildProcess } from 'node:child_process';
import { netnsPrefix } from './run.ts';

export interface Watch {
  stop(): void;
}

/** what changed, in a few words, for the log */
export type OnChange = (what: string) => void;

/** After a monitor exits on its own, how long before it is started again. */
export const MONITOR_RESTART_DELAY_MS = 5_000;
/** The longest line kept from a monitor; longer ones are cut (only their start matters). */
const MAX_LINE_CHARS = 64 * 1024;

export interface MonitorOptions {
  /** run inside this network namespace (`/run/netns/<name>`) */
  netns?: string;
  /** called with each complete line of the monitor's output */
  onLine(line: string): void;
  /** the monitor could not be started or exited; it is restarted after MONITOR_RESTART_DELAY_MS */
  onExit?(reason: string): void;
  restartDelayMs?: number;
}

/** Runs a monitor process for as long as the watch lives, line by line. */
export function watchProcess(argv: readonly string[], options: MonitorOptions): Watch {
  const full = [...(options.netns === undefined ? [] : netnsPrefix(options.netns)), ...argv];
  let child: ChildProcess | undefined;
  let stopped = false;
  let restart: NodeJS.Timeout | undefined;

  const start = () => {
    const [file, ...args] = full;
    if (stopped || file === undefined) return;
    let pending = '';
    let reported = false;
    const exited = (reason: string) => {
      if (reported) return;
      reported = true;
      child = undefined;
      if (stopped) return;
      options.onExit?.(reason);
      restart = setTimeout(start, options.restartDelayMs ?? MONITOR_RESTART_DELAY_MS);
      restart.unref();
    };
    const proc = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    child = proc;
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      let end = pending.indexOf('\n');
      while (end >= 0) {
        options.onLine(pending.slice(0, end));
        pending = pending.slice(end + 1);
        end = pending.indexOf('\n');
      }
      if (pending.length > MAX_LINE_CHARS) pending = pending.slice(0, MAX_LINE_CHARS);
    });
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < MAX_LINE_CHARS) stderr += chunk;
    });
    proc.on('error', (error) => exited(`cannot run ${file}: ${error.message}`));
    proc.on('close', (code, signal) => exited(`${argv.join(' ')} exited (${signal ?? `status ${code}`})${stderr.trim() ? `: ${stderr.trim()}` : ''}`));
    // A monitor must never keep the executor alive on its own.
    proc.unref();
    (proc.stdout as unknown as { unref?: () => void }).unref?.();
    (proc.stderr as unknown as { unref?: () => void }).unref?.();
  };

  start();
  return {
    stop() {
      stopped = true;
      clearTimeout(restart);
      child?.kill('SIGTERM');
      child = undefined;
    },
  };
}

/**
 * Calls onChange once, `ms` after the first change of a burst, with the last reason: a burst
 * (a chain rewritten rule by rule) is one call, and a steady stream of changes cannot postpone
 * the call forever.
 */
export function debounce(onChange: OnChange, ms: number): OnChange & { cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  let last = '';
  const fn = ((what: string) => {
    last = what;
    timer ??= setTimeout(() => {
      timer = undefined;
      onChange(last);
    }, ms);
  }) as OnChange & { cancel(): void };
  fn.cancel = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  return fn;
}
