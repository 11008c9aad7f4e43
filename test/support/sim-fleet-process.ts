// Runs many SimExecutors in one process, driven over IPC by SimFleet (test/support/sim-fleet.ts):
// the benchmark and the storm test spread their simulated executors over several of these, so
// neither the simulator nor the test runner's event loop is the bottleneck being measured.
import { serveIpc } from './ipc-child.ts';
import type { FleetHost, FleetJob } from './sim-fleet.ts';
import { SimExecutor } from './sim-executor.ts';

/** Job reports are sent to the parent in batches, this often: one IPC message per job would cost the simulator more than the jobs. */
const JOB_FLUSH_MS = 5;

const sims = new Map<string, SimExecutor>();
let unsent: FleetJob[] = [];
let flushTimer: NodeJS.Timeout | undefined;
/** Lets the hellos of a `together` connect go. */
let releaseHellos: (() => void) | undefined;

function flush(): void {
  flushTimer = undefined;
  const jobs = unsent;
  unsent = [];
  ipc.emit('jobs', jobs);
}

function select(names: string[] | undefined): SimExecutor[] {
  if (!names) return [...sims.values()];
  return names.map((name) => {
    const sim = sims.get(name);
    if (!sim) throw new Error(`no simulated executor "${name}" here`);
    return sim;
  });
}

const ipc = serveIpc({
  add({ url, hosts }: { url: string; hosts: FleetHost[] }) {
    for (const { name, token, underlay } of hosts) {
      const sim = new SimExecutor(name, url, token, underlay);
      sim.onJob = (report, commands) => {
        const kinds: Record<string, number> = {};
        for (const c of commands) kinds[c.kind] = (kinds[c.kind] ?? 0) + 1;
        unsent.push({ name, jobId: report.jobId, at: performance.timeOrigin + report.sentAt, kinds });
        if (flushTimer === undefined) flushTimer = setTimeout(flush, JOB_FLUSH_MS);
      };
      sims.set(name, sim);
    }
  },
  /**
   * Connects the executors named (all by default), `concurrency` at a time (all at once by
   * default); resolves once every one is open. `together`: all at once, and the open ones hold
   * their hellos until the parent calls `release` (after this process emits `attempted`, every
   * first attempt open or told to come back).
   */
  async connect({ names, concurrency, together }: { names?: string[]; concurrency?: number; together?: boolean }) {
    const chosen = select(names);
    const before = chosen.reduce((sum, s) => sum + s.refusals, 0);
    if (together) {
      let waiting = chosen.length;
      const hello = new Promise<void>((resolve) => (releaseHellos = resolve));
      const attempted = () => {
        if (--waiting === 0) ipc.emit('attempted', null);
      };
      await Promise.all(chosen.map((sim) => sim.connect({ attempted, hello })));
    } else {
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(chosen.length, concurrency ?? chosen.length) }, async () => {
          while (next < chosen.length) await chosen[next++]!.connect();
        }),
      );
    }
    return { refusals: chosen.reduce((sum, s) => sum + s.refusals, 0) - before };
  },
  /** The held hellos of a `together` connect go out. */
  release() {
    releaseHellos?.();
    releaseHellos = undefined;
  },
  close({ names }: { names?: string[] }) {
    for (const sim of select(names)) sim.close();
  },
  cpu() {
    return process.cpuUsage();
  },
});
