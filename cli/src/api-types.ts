// The API's shapes as the CLI reads them (controller/src/schemas.ts and the route files are the source).
export interface Utilization {
  total: number;
  allocated: number;
  free: number;
  reserved: number;
}

export interface Pool {
  id: number;
  name: string;
  cidr: string;
  subnetPrefixLength: number;
  reserved: string[];
  allowFrom: string[];
  createdAt: string;
  utilization?: Utilization;
}

export interface Subnet {
  id: number;
  cidr: string;
  gateway: string;
  pool: string;
  host: string;
  network: string;
  mode: 'network' | 'bip' | 'docker';
  createdAt: string;
}

export type HostStatus = 'pending' | 'online' | 'offline';

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
  createdAt: string;
  updatedAt: string;
}

export interface JobSummary {
  id: number;
  host: string;
  generation: number;
  status: string;
  reason: string;
  commandCount: number;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
}

export interface JobDetail extends JobSummary {
  results: Array<{
    command: unknown;
    text: string;
    ok: boolean | null;
    exitCode: number | null;
    stdout: string;
    stderr: string;
    durationMs: number | null;
  }>;
}

export interface Plan {
  generation: number;
  observed: 'snapshot' | 'none';
  commands: unknown[];
  script: string;
  skipped: string[];
}

export interface FleetStatus {
  controller: { version: string; startedAt: string; storage: { status: string; code?: string; reason?: string } };
  hosts: { total: number; pending: number; online: number; offline: number };
  behind: { counts: Record<HostStatus, number>; hosts: Array<{ name: string; status: HostStatus; generation: { desired: number; applied: number } }> };
  sessions: { websocket: number; polling: number };
  pools: Array<{ name: string; utilization: Utilization }>;
  failedJobs: JobSummary[];
}

export type Items<T> = { items: T[] };
