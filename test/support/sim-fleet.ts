// Simulated executors (SimExecutor) spread over several child processes
// (sim-fleet-process.ts), driven from here: connect them (all at once, or so many at a time),
// close them, hear of every job each one answers, and ask how much CPU the simulation took,
// so a figure can say how much of it was the simulator's.
import { IpcChild } from './ipc-child.ts';

export interface FleetHost {
  name: string;
  token: string;
  /** its address on eth0 with the prefix (SimExecutor's underlay) */
  underlay?: string;
}

/** One job an executor answered: `at` is when it sent its result, in epoch milliseconds (performance.timeOrigin + performance.now()). */
export interface FleetJob {
  name: string;
  jobId: number;
  at: number;
  /** how many commands of each kind the job carried */
  kinds: Record<string, number>;
}

/** The current time on the scale of FleetJob.at. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

export class SimFleet {
  onJob: ((job: FleetJob) => void) | undefined;
  private readonly home = new Map<string, IpcChild>();
  private onAttempted: (() => void) | undefined;

  private constructor(private readonly children: IpcChild[]) {
    for (const child of children) {
      child.onEvent = (event, data) => {
        if (event === 'jobs') for (const job of data as FleetJob[]) this.onJob?.(job);
        if (event === 'attempted') this.onAttempted?.();
      };
    }
  }

  /** `processes` children, the hosts dealt round-robin among them. */
  static async start(options: { processes: number; url: string; hosts: FleetHost[] }): Promise<SimFleet> {
    const fleet = new SimFleet(Array.from({ length: Math.max(1, options.processes) }, () => new IpcChild('test/support/sim-fleet-process.ts')));
    await fleet.add(options.url, options.hosts);
    return fleet;
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid);
  }

  /** More executors, each in the process holding fewest. */
  async add(url: string, hosts: FleetHost[]): Promise<void> {
    const counts = new Map(this.children.map((c) => [c, 0]));
    for (const child of this.home.values()) counts.set(child, counts.get(child)! + 1);
    const batches = new Map<IpcChild, FleetHost[]>();
    for (const host of hosts) {
      const child = [...counts].sort((a, b) => a[1] - b[1])[0]![0];
      counts.set(child, counts.get(child)! + 1);
      this.home.set(host.name, child);
      batches.set(child, [...(batches.get(child) ?? []), host]);
    }
    await Promise.all([...batches].map(([child, batch]) => child.call('add', { url, hosts: batch })));
  }

  /**
   * Connects the executors named (all by default); resolves once each is open, after any
   * 503 CONTROLLER_BUSY it was told to wait out. `concurrency` bounds the connections in
   * progress across the fleet (default: all at once). `together`: a storm at its worst, every
   * connection in (open, or told to come back) before the first hello, then all the hellos at
   * once; `onHellos` is called as they go. Returns how many refusals they met.
   */
  async connect(options: { names?: string[]; concurrency?: number; together?: boolean; onHellos?: () => void } = {}): Promise<{ refusals: number }> {
    const groups = this.group(options.names);
    const share = options.concurrency === undefined ? undefined : Math.max(1, Math.ceil(options.concurrency / groups.size));
    // Every process says when its first attempts are all in; the hellos wait for the last.
    let attempted = 0;
    const allAttempted = options.together
      ? new Promise<void>((resolve) => {
          this.onAttempted = () => {
            if (++attempted === groups.size) resolve();
          };
        })
      : undefined;
    const replies = Promise.all(
      [...groups].map(([child, names]) =>
        child.call<{ refusals: number }>('connect', { names, ...(share === undefined ? {} : { concurrency: share }), together: options.together === true }),
      ),
    );
    if (allAttempted !== undefined) {
      await Promise.race([allAttempted, replies]);
      this.onAttempted = undefined;
      await Promise.all([...groups.keys()].map((child) => child.call('release')));
      options.onHellos?.();
    }
    return { refusals: (await replies).reduce((sum, r) => sum + r.refusals, 0) };
  }

  async close(names?: string[]): Promise<void> {
    await Promise.all([...this.group(names)].map(([child, group]) => child.call('close', { names: group })));
  }

  /** CPU time (user + system) the simulator processes have used since they started, in seconds. */
  async cpuSeconds(): Promise<number> {
    const usages = await Promise.all(this.children.map((c) => c.call<NodeJS.CpuUsage>('cpu')));
    return usages.reduce((sum, u) => sum + (u.user + u.system) / 1e6, 0);
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((c) => c.stop()));
  }

  /** The executors named (or all), by the process holding them; undefined names: each process's all. */
  private group(names: string[] | undefined): Map<IpcChild, string[] | undefined> {
    if (!names) return new Map(this.children.map((c) => [c, undefined]));
    const groups = new Map<IpcChild, string[]>();
    for (const name of names) {
      const child = this.home.get(name);
      if (!child) throw new Error(`no simulated executor "${name}" in this fleet`);
      groups.set(child, [...(groups.get(child) ?? []), name]);
    }
    return groups;
  }
}
