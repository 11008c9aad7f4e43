// Docker's remote IPAM driver API (libnetwork docs/ipam.md), answered from the controller's pools:
// `docker network create --ipam-driver crossdock` gets a subnet unique across the fleet, routed
// on every other host; container addresses are handed out here, from the local state, so they
// keep working while the controller is away. IPv4 only.
import { containsAddress, containsCidr, formatCidr, formatIPv4, hostRange, parseCidr, parseIPv4, type Cidr } from '@crossdock/shared';
import type { Logger } from '../log.ts';
import { ControllerRefused, ControllerUnreachable, type SubnetClient, type SubnetRequestBody } from './controller-client.ts';
import type { IpamState, IpamStore, PoolState } from './state.ts';

export const PLUGIN_CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';
export const LOCAL_ADDRESS_SPACE = 'crossdock';
export const GLOBAL_ADDRESS_SPACE = 'crossdock-global';
/** libnetwork's option naming the gateway request among RequestAddress calls. */
export const REQUEST_ADDRESS_TYPE = 'RequestAddressType';
export const GATEWAY_ADDRESS_TYPE = 'com.docker.network.gateway';
/** --ipam-opt keys crossdock reads; Docker's own (com.docker.*) are let through. */
export const POOL_OPTION = 'pool';
export const PREFIX_LENGTH_OPTION = 'prefix-length';
/** How often a release the controller did not confirm is tried again. */
export const RELEASE_RETRY_INTERVAL_MS = 10_000;

export type PluginReply = { status: 200; body: Record<string, unknown> } | { status: 500; body: { Err: string } };

/** A request Docker made wrongly or that cannot be served: its message goes back in `Err`. */
class PluginError extends Error {}

const ok = (body: Record<string, unknown> = {}): PluginReply => ({ status: 200, body });

function field(body: unknown, name: string): unknown {
  return body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
}

function stringField(body: unknown, name: string): string {
  const value = field(body, name) ?? '';
  if (typeof value !== 'string') throw new PluginError(`${name} must be a string`);
  return value;
}

function optionsField(body: unknown): Record<string, string> {
  const value = field(body, 'Options') ?? {};
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw new PluginError('Options must be an object of strings');
  }
  return value as Record<string, string>;
}

function requireIPv4Cidr(text: string, what: string): Cidr {
  if (text.includes(':')) throw ipv6Refused(`${what} ${text}`);
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new PluginError(`${what}: ${parsed.message}${parsed.reason === 'host-bits' ? `; use ${parsed.suggestion}` : ''}`);
  return parsed.cidr;
}

function ipv6Refused(what: string): PluginError {
  return new PluginError(
    `crossdock hands out IPv4 subnets only, and ${what} is IPv6; create the network without --ipv6 (or give it an IPv6 subnet through another IPAM driver)`,
  );
}

export interface IpamPluginOptions {
  store: IpamStore;
  controller: SubnetClient;
  log: Logger;
}

export class IpamPlugin {
  private state: IpamState | undefined;
  /** one request at a time: each reads and writes the state whole */
  private queue: Promise<unknown> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: IpamPluginOptions) {}

  /** Reads the state file; throws (with what to do) if it cannot be used. */
  async start(): Promise<void> {
    this.state = await this.options.store.load();
    if (this.state.pendingReleases.length > 0) void this.serialized(() => this.retryReleases());
    this.retryTimer = setInterval(() => {
      if (this.state && this.state.pendingReleases.length > 0) void this.serialized(() => this.retryReleases());
    }, RELEASE_RETRY_INTERVAL_MS);
    this.retryTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.retryTimer);
    await this.queue.catch(() => {});
  }

  /** The pools and addresses held now (for tests and logs). */
  snapshot(): IpamState {
    return structuredClone(this.current());
  }

  /** Answers one call of the plugin API: `method` is the path without its slash (`IpamDriver.RequestPool`). */
  handle(method: string, body: unknown): Promise<PluginReply> {
    return this.serialized(async () => {
      try {
        return await this.dispatch(method, body);
      } catch (error) {
        if (error instanceof PluginError) return { status: 500, body: { Err: error.message } };
        this.options.log.error({ method, error: (error as Error).message }, 'IPAM plugin request failed');
        return { status: 500, body: { Err: `crossdock IPAM: ${(error as Error).message}` } };
      }
    });
  }

  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task);
    this.queue = next.catch(() => {});
    return next;
  }

  private current(): IpamState {
    if (!this.state) throw new Error('the IPAM plugin was not started');
    return this.state;
  }

  private async dispatch(method: string, body: unknown): Promise<PluginReply> {
    switch (method) {
      case 'Plugin.Activate':
        return ok({ Implements: ['IpamDriver'] });
      case 'IpamDriver.GetCapabilities':
        // No replay on daemon restart: the state file keeps the pools and addresses.
        return ok({ RequiresMACAddress: false, RequiresRequestReplay: false });
      case 'IpamDriver.GetDefaultAddressSpaces':
        return ok({ LocalDefaultAddressSpace: LOCAL_ADDRESS_SPACE, GlobalDefaultAddressSpace: GLOBAL_ADDRESS_SPACE });
      case 'IpamDriver.RequestPool':
        return this.requestPool(body);
      case 'IpamDriver.ReleasePool':
        return this.releasePool(body);
      case 'IpamDriver.RequestAddress':
        return this.requestAddress(body);
      case 'IpamDriver.ReleaseAddress':
        return this.releaseAddress(body);
      default:
        throw new PluginError(
          `${method || '(no method)'} is not part of the IPAM driver API; crossdock answers Plugin.Activate and IpamDriver.{GetCapabilities,GetDefaultAddressSpaces,RequestPool,ReleasePool,RequestAddress,ReleaseAddress}`,
        );
    }
  }

  private async save(): Promise<void> {
    await this.options.store.save(this.current());
  }

  private pool(body: unknown): PoolState {
    const id = stringField(body, 'PoolID');
    const pool = this.current().pools.find((p) => p.id === id);
    if (!pool) {
      const held = this.current().pools.map((p) => p.id);
      throw new PluginError(`crossdock holds no pool "${id}" on this host${held.length > 0 ? ` (it holds ${held.join(', ')})` : ''}`);
    }
    return pool;
  }

  private async requestPool(body: unknown): Promise<PluginReply> {
    const space = stringField(body, 'AddressSpace');
    const poolText = stringField(body, 'Pool');
    const subPoolText = stringField(body, 'SubPool');
    const options = optionsField(body);
    if (field(body, 'V6') === true) throw ipv6Refused('the pool asked for');
    if (space === GLOBAL_ADDRESS_SPACE) {
      throw new PluginError(
        'crossdock serves local networks (bridge, macvlan, ipvlan), not swarm-scoped ones; create the network with the default IPAM driver or without --scope swarm',
      );
    }
    if (space !== LOCAL_ADDRESS_SPACE && space !== '') {
      throw new PluginError(`address space "${space}" is not crossdock's; leave it out (crossdock's is "${LOCAL_ADDRESS_SPACE}")`);
    }
    if (!poolText && subPoolText) throw new PluginError(`--ip-range ${subPoolText} needs --subnet: give the subnet that contains it`);

    const request: SubnetRequestBody = {};
    for (const [key, value] of Object.entries(options)) {
      if (key === POOL_OPTION) {
        if (!value) throw new PluginError(`--ipam-opt ${POOL_OPTION}= needs a pool name, such as ${POOL_OPTION}=default`);
        request.pool = value;
      } else if (key === PREFIX_LENGTH_OPTION) {
        const length = /^\d{1,2}$/.test(value) ? Number(value) : NaN;
        if (!(length >= 1 && length <= 32))
          throw new PluginError(`--ipam-opt ${PREFIX_LENGTH_OPTION}=${value} is not a prefix length; use a whole number such as 24`);
        request.prefixLength = length;
      } else if (!key.startsWith('com.docker.')) {
        throw new PluginError(`unknown --ipam-opt ${key}; crossdock takes ${POOL_OPTION}=<pool name> and ${PREFIX_LENGTH_OPTION}=<bits>`);
      }
    }

    const state = this.current();
    let subPool: Cidr | null = null;
    if (poolText) {
      const cidr = requireIPv4Cidr(poolText, '--subnet');
      if (subPoolText) {
        subPool = requireIPv4Cidr(subPoolText, '--ip-range');
        if (!containsCidr(cidr, subPool))
          throw new PluginError(`--ip-range ${formatCidr(subPool)} is not inside --subnet ${formatCidr(cidr)}; give a range inside the subnet`);
      }
      if (request.prefixLength !== undefined && request.prefixLength !== cidr.prefixLength) {
        throw new PluginError(
          `--ipam-opt ${PREFIX_LENGTH_OPTION}=${request.prefixLength} contradicts --subnet ${formatCidr(cidr)}; give one or make them agree`,
        );
      }
      const id = formatCidr(cidr);
      // Identical requests get the same pool (libnetwork asks the driver to count them).
      const held = state.pools.find((p) => p.id === id);
      if (held) {
        const wanted = subPool ? formatCidr(subPool) : null;
        if (held.subPool !== wanted) {
          throw new PluginError(`pool ${id} is already in use on this host with --ip-range ${held.subPool ?? '(none)'}; use the same range or another subnet`);
        }
        held.subnetId = await this.confirm(id, held.subnetId, request);
        held.refs++;
        await this.save();
        return ok({ PoolID: held.id, Pool: held.cidr, Data: {} });
      }
      // Released by Docker, not yet (as far as this host knows) by the controller: taken back.
      const pending = state.pendingReleases.find((p) => p.cidr === id);
      if (pending) {
        const subnetId = await this.confirm(id, pending.subnetId, request);
        state.pendingReleases = state.pendingReleases.filter((p) => p !== pending);
        return this.adopt({ subnetId, cidr: id }, subPool);
      }
      request.cidr = id;
    }

    let allocated;
    try {
      allocated = await this.options.controller.request(request);
    } catch (error) {
      if (error instanceof ControllerUnreachable) {
        throw new PluginError(`${error.message}: a new network needs the controller to give it a subnet unique in the fleet; networks that exist keep working`);
      }
      if (error instanceof ControllerRefused) throw new PluginError(`the crossdock controller refused the subnet: ${error.message}`);
      throw error;
    }
    if (subPool && !containsCidr(requireIPv4Cidr(allocated.cidr, 'the subnet'), subPool)) {
      throw new PluginError(`the controller answered ${allocated.cidr}, which does not contain --ip-range ${formatCidr(subPool)}`);
    }
    this.options.log.info({ subnet: allocated.cidr, pool: allocated.pool }, 'subnet allocated for a Docker network');
    return this.adopt({ subnetId: allocated.id, cidr: allocated.cidr }, subPool);
  }

  /**
   * A block this host believes it holds, asked for again: the controller confirms it (answering
   * the same subnet, or a new record if it was released meanwhile, or refusing it if another host
   * took it). Unreachable, the local record stands: existing networks keep working offline.
   */
  private async confirm(cidr: string, subnetId: number, request: SubnetRequestBody): Promise<number> {
    try {
      return (await this.options.controller.request({ ...request, cidr })).id;
    } catch (error) {
      if (error instanceof ControllerUnreachable) return subnetId;
      if (error instanceof ControllerRefused) throw new PluginError(`the crossdock controller refused the subnet: ${error.message}`);
      throw error;
    }
  }

  private async adopt(subnet: { subnetId: number; cidr: string }, subPool: Cidr | null): Promise<PluginReply> {
    const pool: PoolState = {
      id: subnet.cidr,
      subnetId: subnet.subnetId,
      cidr: subnet.cidr,
      subPool: subPool ? formatCidr(subPool) : null,
      refs: 1,
      addresses: [],
    };
    this.current().pools.push(pool);
    await this.save();
    return ok({ PoolID: pool.id, Pool: pool.cidr, Data: {} });
  }

  private async releasePool(body: unknown): Promise<PluginReply> {
    const pool = this.pool(body);
    pool.refs--;
    if (pool.refs > 0) {
      await this.save();
      return ok();
    }
    const state = this.current();
    state.pools = state.pools.filter((p) => p !== pool);
    // Recorded before asking: a release the controller does not hear of now is asked again later.
    state.pendingReleases.push({ subnetId: pool.subnetId, cidr: pool.cidr });
    await this.save();
    await this.retryReleases();
    return ok();
  }

  /** Asks the controller to release what Docker released; what fails stays pending for the next try. */
  private async retryReleases(): Promise<void> {
    const state = this.current();
    const remaining: IpamState['pendingReleases'] = [];
    for (const pending of state.pendingReleases) {
      try {
        await this.options.controller.release(pending.subnetId);
        this.options.log.info({ subnet: pending.cidr }, 'subnet of a Docker network released');
      } catch (error) {
        if (error instanceof ControllerRefused) {
          // Not this host's to release (an operator took it over): nothing more to ask.
          this.options.log.error({ subnet: pending.cidr, error: error.message }, 'the controller refused to release a Docker network subnet');
        } else {
          this.options.log.warn({ subnet: pending.cidr, error: (error as Error).message }, 'could not release a Docker network subnet yet; trying again later');
          remaining.push(pending);
        }
      }
    }
    if (remaining.length !== state.pendingReleases.length) {
      state.pendingReleases = remaining;
      await this.save();
    }
  }

  private async requestAddress(body: unknown): Promise<PluginReply> {
    const pool = this.pool(body);
    const wanted = stringField(body, 'Address');
    const options = optionsField(body);
    const cidr = requireIPv4Cidr(pool.cidr, 'pool');
    const { first, last } = hostRange(cidr);
    const taken = new Set(pool.addresses);
    let address: number;
    if (wanted) {
      if (wanted.includes(':')) throw ipv6Refused(`address ${wanted}`);
      const value = parseIPv4(wanted);
      if (value === null) throw new PluginError(`${wanted} is not an IPv4 address; use four decimal octets such as ${formatIPv4(first)}`);
      if (!containsAddress(cidr, value))
        throw new PluginError(`${wanted} is not inside ${pool.cidr}; use an address from ${formatIPv4(first)} to ${formatIPv4(last)}`);
      if (value < first || value > last)
        throw new PluginError(`${wanted} is the network or broadcast address of ${pool.cidr}; use an address from ${formatIPv4(first)} to ${formatIPv4(last)}`);
      if (taken.has(wanted)) throw new PluginError(`${wanted} is already in use in ${pool.cidr}; choose another address or leave --ip out`);
      address = value;
    } else {
      const range =
        options[REQUEST_ADDRESS_TYPE] === GATEWAY_ADDRESS_TYPE || !pool.subPool
          ? { first, last }
          : clamp(hostRange(requireIPv4Cidr(pool.subPool, 'range')), first, last);
      let found: number | undefined;
      for (let candidate = range.first; candidate <= range.last; candidate++) {
        if (!taken.has(formatIPv4(candidate))) {
          found = candidate;
          break;
        }
      }
      if (found === undefined) {
        throw new PluginError(
          `no free address left in ${pool.subPool ?? pool.cidr} (${taken.size} in use); remove a container from the network or use a larger subnet`,
        );
      }
      address = found;
    }
    pool.addresses.push(formatIPv4(address));
    // Saved before the answer: an address Docker was given is never handed out again.
    await this.save();
    return ok({ Address: `${formatIPv4(address)}/${cidr.prefixLength}`, Data: {} });
  }

  private async releaseAddress(body: unknown): Promise<PluginReply> {
    const pool = this.pool(body);
    const address = stringField(body, 'Address');
    if (parseIPv4(address) === null) throw new PluginError(`${address || '(none)'} is not an IPv4 address`);
    const before = pool.addresses.length;
    pool.addresses = pool.addresses.filter((a) => a !== address);
    // Releasing an address not held is answered as done: Docker cleans up after failures with it.
    if (pool.addresses.length !== before) await this.save();
    return ok();
  }
}

function clamp(range: { first: number; last: number }, first: number, last: number): { first: number; last: number } {
  return { first: Math.max(range.first, first), last: Math.min(range.last, last) };
}
