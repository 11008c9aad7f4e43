// What the dashboard knows, as the event stream delivers it, and the few facts it derives
// (a host's route state, an edge's colour). The shapes are the API's (GET /v1/hosts and
// /v1/events); fields other branches may add are optional here.

export type HostStatus = 'pending' | 'online' | 'offline';
export type RouteState = 'applied' | 'pending' | 'failed';
export type JobStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'timeout';

export interface Subnet {
  id: number;
  cidr: string;
  gateway: string;
  pool: string;
  host: string;
  network: string;
  mode: 'network' | 'bip' | 'docker';
}

export interface JobSummary {
  id: number;
  host: string;
  generation: number;
  status: JobStatus;
  reason: string;
  commandCount: number;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
}

export interface JobDetail extends JobSummary {
  results: Array<{ text: string; ok: boolean | null; exitCode: number | null; stdout: string; stderr: string; durationMs: number | null }>;
}

/** How a host reaches one peer (GET /v1/hosts/:name, once the controller reports it). */
export interface Peer {
  host: string;
  address?: string;
  onLink?: boolean | null;
  reach?: 'direct' | 'vxlan' | 'unreachable' | 'mixed';
  reason?: string;
  applied?: boolean;
}

export interface Host {
  id: number;
  name: string;
  address: string;
  interface: string;
  labels: Record<string, string>;
  status: HostStatus;
  lastSeenAt: string | null;
  subnets: Subnet[];
  generation: { desired: number; applied: number };
  lastJob?: JobSummary | null;
  /** the layer-2 segment the host reports, where it reports one */
  segment?: string | null;
  peers?: Peer[];
}

export interface Pool {
  id: number;
  name: string;
  cidr: string;
  subnetPrefixLength: number;
  reserved: string[];
  allowFrom: string[];
  utilization: { total: number; allocated: number; free: number; reserved: number };
}

/**
 * A host's routes: applied when the host has its desired generation in place; failed when it
 * does not and its newest job failed or timed out; pending otherwise (a job under way, or
 * the host's executor away: it keeps what it last applied, and catches up when it returns).
 */
export function routeState(host: Host): RouteState {
  if (host.generation.applied >= host.generation.desired && host.status !== 'pending') return 'applied';
  if (host.lastJob && (host.lastJob.status === 'failed' || host.lastJob.status === 'timeout')) return 'failed';
  return 'pending';
}

/** Both ends hold their routes to each other only when both are applied; the worse end decides. */
export function edgeState(a: Host, b: Host): RouteState {
  const states = [routeState(a), routeState(b)];
  if (states.includes('failed')) return 'failed';
  if (states.includes('pending')) return 'pending';
  return 'applied';
}

export const ROUTE_STATE_TEXT: Record<RouteState, string> = {
  applied: 'routes applied',
  pending: 'routes pending',
  failed: 'routes failed',
};

export const MAX_RECENT_JOBS = 200;

export class Store {
  readonly hosts = new Map<string, Host>();
  pools: Pool[] = [];
  /** newest first */
  jobs: JobSummary[] = [];
  private readonly listeners = new Set<(what: Set<string>) => void>();
  private pending = new Set<string>();
  private scheduled = false;

  /** Changes are announced once per animation frame, with what changed ('hosts', 'pools', 'jobs', 'host:<name>'). */
  subscribe(listener: (what: Set<string>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(...what: string[]): void {
    for (const w of what) this.pending.add(w);
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      const batch = this.pending;
      this.pending = new Set();
      for (const l of this.listeners) l(batch);
    });
  }

  apply(event: string, data: unknown): void {
    switch (event) {
      case 'snapshot': {
        const snapshot = data as { hosts: Host[]; pools: Pool[] };
        this.hosts.clear();
        for (const host of snapshot.hosts) this.hosts.set(host.name, host);
        this.pools = snapshot.pools;
        this.changed('hosts', 'pools', 'snapshot');
        break;
      }
      case 'host': {
        const host = data as Host;
        const known = this.hosts.get(host.name);
        // A job event may have told us of a newer job than the host read carried.
        if (known?.lastJob && (!host.lastJob || host.lastJob.id < known.lastJob.id)) host.lastJob = known.lastJob;
        this.hosts.set(host.name, host);
        this.changed('hosts', `host:${host.name}`);
        break;
      }
      case 'host.removed': {
        const { name } = data as { name: string };
        this.hosts.delete(name);
        this.jobs = this.jobs.filter((j) => j.host !== name);
        this.changed('hosts', `host:${name}`, 'jobs');
        break;
      }
      case 'pools':
        this.pools = (data as { items: Pool[] }).items;
        this.changed('pools');
        break;
      case 'job': {
        const job = data as JobSummary;
        const host = this.hosts.get(job.host);
        if (host && (!host.lastJob || host.lastJob.id <= job.id)) {
          host.lastJob = job;
          this.changed('hosts', `host:${host.name}`);
        }
        this.addJobs([job]);
        break;
      }
    }
  }

  addJobs(jobs: JobSummary[]): void {
    const byId = new Map(this.jobs.map((j) => [j.id, j]));
    for (const j of jobs) byId.set(j.id, j);
    this.jobs = [...byId.values()].sort((a, b) => b.id - a.id).slice(0, MAX_RECENT_JOBS);
    this.changed('jobs');
  }

  sortedHosts(): Host[] {
    return [...this.hosts.values()].sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  }
}
