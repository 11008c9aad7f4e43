// What the IPAM plugin must not forget across an executor restart: the pools Docker holds on this
// host (with their controller subnet ids) and every address handed out in them. One JSON file,
// replaced atomically (written beside, fsynced, renamed over, the directory fsynced), so a crash
// leaves the old state or the new one, never half of either.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';

export const IPAM_STATE_VERSION = 1;

export interface PoolState {
  /** Docker's PoolID: the subnet's CIDR, unique in the fleet */
  id: string;
  /** the controller's id of the subnet (DELETE /v1/agent/subnets/:id) */
  subnetId: number;
  cidr: string;
  /** --ip-range: where addresses are picked from when none is asked for */
  subPool: string | null;
  /** RequestPool calls not yet matched by a ReleasePool (libnetwork asks the driver to count them) */
  refs: number;
  /** every address handed out (gateway included), as dotted quads */
  addresses: string[];
}

export interface IpamState {
  version: typeof IPAM_STATE_VERSION;
  pools: PoolState[];
  /** subnets Docker released that the controller has not yet confirmed releasing */
  pendingReleases: Array<{ subnetId: number; cidr: string }>;
}

export const emptyIpamState = (): IpamState => ({ version: IPAM_STATE_VERSION, pools: [], pendingReleases: [] });

export interface IpamStore {
  load(): Promise<IpamState>;
  save(state: IpamState): Promise<void>;
}

export class IpamStateError extends Error {}

function parseState(text: string, file: string): IpamState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new IpamStateError(`${file} is not JSON (${(error as Error).message}); move it aside to start with no Docker pools`);
  }
  const state = value as Partial<IpamState>;
  if (!state || state.version !== IPAM_STATE_VERSION || !Array.isArray(state.pools) || !Array.isArray(state.pendingReleases)) {
    throw new IpamStateError(`${file} is not an IPAM state file of version ${IPAM_STATE_VERSION}; move it aside to start with no Docker pools`);
  }
  for (const pool of state.pools) {
    if (
      typeof pool?.id !== 'string' ||
      typeof pool.cidr !== 'string' ||
      !Number.isInteger(pool.subnetId) ||
      !Number.isInteger(pool.refs) ||
      !Array.isArray(pool.addresses)
    ) {
      throw new IpamStateError(`${file} holds a malformed pool (${JSON.stringify(pool).slice(0, 120)}); move the file aside to start with no Docker pools`);
    }
  }
  return state as IpamState;
}

export class FileIpamStore implements IpamStore {
  constructor(readonly file: string) {}

  async load(): Promise<IpamState> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyIpamState();
      throw error;
    }
    return parseState(text, this.file);
  }

  async save(state: IpamState): Promise<void> {
    const dir = path.dirname(this.file);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temporary = `${this.file}.${process.pid}.tmp`;
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(state, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.file);
    const directory = await open(dir, 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }
}

/** For tests: the state in memory, saved as a copy (a test can read what was "written"). */
export class MemoryIpamStore implements IpamStore {
  saved: IpamState | null = null;
  saves = 0;
  constructor(private initial: IpamState = emptyIpamState()) {}
  async load(): Promise<IpamState> {
    return structuredClone(this.saved ?? this.initial);
  }
  async save(state: IpamState): Promise<void> {
    this.saved = structuredClone(state);
    this.saves++;
  }
}
