// Gives memory back after a burst of syncs. A reconnect storm plans and sends every host's whole
// table in a few seconds: V8 grows its heap for that garbage and keeps it grown afterwards (1,000
// hosts with full tables left a heap of 198 MiB holding 79 MiB of objects, and the resident size
// stayed 120 MiB above what one full collection brings it to). V8 shrinks a heap only when it
// collects, and with the burst over there is nothing left to make it collect. So once a burst of
// at least `threshold` units of work (a host's hello planned, a job's result taken) has been
// quiet for `quietMs`, the controller runs one full collection (about 50-70 ms at that size, when
// nothing else is going on).
import type { FastifyBaseLogger } from 'fastify';
import v8 from 'node:v8';
import vm from 'node:vm';

export interface ReclaimOptions {
  /** units of work (hellos planned, results taken) since the last collection before one is worth it */
  threshold: number;
  /** how long no sync may happen before the burst counts as over */
  quietMs: number;
}

export const DEFAULT_RECLAIM: ReclaimOptions = { threshold: 200, quietMs: 3_000 };

/** V8's full collection, the function --expose-gc would make global, or null where V8 refuses the flag. */
export function fullCollection(): (() => void) | null {
  try {
    v8.setFlagsFromString('--expose-gc');
    // The flag applies to contexts made from now on: a new context has gc(), this one stays as it was.
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
}

export class MemoryReclaimer {
  private synced = 0;
  private timer: NodeJS.Timeout | undefined;
  /** collections run so far */
  collections = 0;

  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly options: ReclaimOptions = DEFAULT_RECLAIM,
    private readonly collect: (() => void) | null = fullCollection(),
  ) {}

  /** `units` of work were done: hellos planned and sent, results taken. */
  note(units: number): void {
    if (this.collect === null) return;
    this.synced += units;
    if (this.synced < this.options.threshold) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reclaim(), this.options.quietMs);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private reclaim(): void {
    this.timer = undefined;
    const units = this.synced;
    this.synced = 0;
    const before = process.memoryUsage();
    const started = performance.now();
    this.collect!();
    this.collections++;
    const after = process.memoryUsage();
    const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
    this.log.info(
      {
        units,
        tookMs: Math.round(performance.now() - started),
        rssMiB: [mib(before.rss), mib(after.rss)],
        heapMiB: [mib(before.heapTotal), mib(after.heapTotal)],
      },
      'collected the garbage of a burst of syncs and results',
    );
  }
}
