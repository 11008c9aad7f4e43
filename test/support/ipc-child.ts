// A helper process driven over Node IPC (the simulated executor fleet, the latency prober):
// the parent calls operations and awaits their replies; the child may also send events.
// Each such process runs its own event loop, so the load it puts on one never delays the
// other's timers, nor the test runner's.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './controller-process.ts';

/** What a child sends: a reply to a call, or an event of its own. */
export type ChildMessage =
  | { type: 'reply'; id: number; ok: true; result: unknown }
  | { type: 'reply'; id: number; ok: false; error: string }
  | { type: 'event'; event: string; data: unknown };

interface Call {
  id: number;
  op: string;
  args: unknown;
}

export class IpcChild {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  private stderr = '';
  private readonly exited: Promise<void>;
  onEvent: ((event: string, data: unknown) => void) | undefined;

  /** script: a path under the repository, run with tsx. */
  constructor(script: string) {
    this.child = fork(path.join(REPO_ROOT, script), [], {
      cwd: REPO_ROOT,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.child.on('message', (message: ChildMessage) => {
      if (message.type === 'event') {
        this.onEvent?.(message.event, message.data);
        return;
      }
      const call = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      if (message.ok) call?.resolve(message.result);
      else call?.reject(new Error(message.error));
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        for (const call of this.waiting.values()) call.reject(new Error(`${script} exited (${signal ?? code}) before answering:\n${this.stderr}`));
        this.waiting.clear();
        resolve();
      }),
    );
  }

  readonly child: ChildProcess;

  get pid(): number {
    return this.child.pid!;
  }

  call<T>(op: string, args: unknown = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (r: unknown) => void, reject });
      this.child.send({ id, op, args } satisfies Call);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}

/**
 * The child's side: answers each call with its handler's result. It exits when its parent
 * goes (the IPC channel closes, or it is re-parented), so a killed test run leaves nothing behind.
 */
export function serveIpc(handlers: Record<string, (args: any) => unknown>): { emit: (event: string, data: unknown) => void } {
  const send = (message: ChildMessage) => {
    if (process.connected) process.send!(message);
  };
  process.on('message', async ({ id, op, args }: Call) => {
    try {
      const handler = handlers[op];
      if (!handler) throw new Error(`no operation "${op}"`);
      send({ type: 'reply', id, ok: true, result: (await handler(args)) ?? null });
    } catch (error) {
      send({ type: 'reply', id, ok: false, error: (error as Error).stack ?? String(error) });
    }
  });
  process.once('disconnect', () => process.exit(0));
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, PARENT_CHECK_INTERVAL_MS).unref();
  return { emit: (event, data) => send({ type: 'event', event, data }) };
}

const PARENT_CHECK_INTERVAL_MS = 1_000;
