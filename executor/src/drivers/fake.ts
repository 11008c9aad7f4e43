// In-memory drivers with the real ones' semantics, for unit tests of the executor and the
// planner. State is public: set it up directly, assert on it afterwards. The ip and iptables
// fakes are the real drivers over emulated tools; test/drivers/*.contract.test.ts runs each
// fake and its real driver through the same cases.
import { performance } from 'node:perf_hooks';
import {
  MANAGED_LABEL,
  networkLabels,
  type CommandResult,
  type DockerDaemonBip,
  type DockerNetworkCreate,
  type DockerNetworkRemove,
  type FirewallChain,
  type FirewallJump,
  type FirewallTable,
  type SysctlKey,
  type SysctlSet,
  VXLAN_DEVICE,
  type ObservedVxlan,
  type ObservedVxlanDevice,
  type VxlanCommand,
} from '@crossdock/shared';
import { networkDifference, type DockerDriver, type ObservedDocker, type ObservedDockerNetwork, type SetBipOptions } from './docker.ts';
import { emulatedIp, type EmulatedIpHost, type ForeignRoute } from './emulated-ip.ts';
import { emptyTable, emulatedIptables, type EmulatedIptablesHost } from './emulated-iptables.ts';
import { createIpDriver, type IpDriver, type ObservedInterface, type ObservedRoute, type RouteCommand } from './ip.ts';
import { createIptablesDriver, type FirewallResults, type IptablesDriver, type ObservedFirewall, type SavedTable } from './iptables.ts';
import { firstInvalid, resultWithoutProcess, type Runner } from './run.ts';
import type { SysctlDriver } from './sysctl.ts';
import { createVxlanDriver, type VxlanDriver } from './vxlan.ts';
import type { OnChange, Watch } from './watch.ts';

/**
 * The fakes' change announcements, as the kernel and the engine make them: every change a
 * driver makes, and every change a test makes by hand and then announce()s.
 */
class Announcer {
  private readonly listeners = new Set<OnChange>();

  watch(onChange: OnChange): Watch {
    this.listeners.add(onChange);
    return { stop: () => this.listeners.delete(onChange) };
  }

  announce(what: string): void {
    for (const listener of this.listeners) listener(what);
  }
}

/** What dockerode says when no engine listens on the default socket. */
const NO_ENGINE = 'connect ENOENT /var/run/docker.sock';

/** The real ip driver over an emulated `ip` (emulated-ip.ts): set the state directly, assert on it afterwards. */
export class FakeIpDriver implements IpDriver, EmulatedIpHost {
  routes = new Map<string, ObservedRoute>();
  /** routes someone else made: never changed, and a replace of their destination is refused */
  foreignRoutes = new Map<string, ForeignRoute>();
  interfaces: ObservedInterface[] = [
    { name: 'lo', mtu: 65536, addresses: ['127.0.0.1/8'] },
    { name: 'eth0', mtu: 1500, addresses: ['198.51.100.11/24'] },
  ];
  failures = new Map<string, string>();
  /** every applyRoutes call, in order */
  batches: RouteCommand[][] = [];
  /** the `ip` tool the driver runs; tests may wrap it */
  runner: Runner = emulatedIp(this);
  private readonly driver = createIpDriver({ runner: (argv, options) => this.runner(argv, options) });

  observeRoutes(): Promise<ObservedRoute[]> {
    return this.driver.observeRoutes();
  }

  async applyRoutes(commands: readonly RouteCommand[]): Promise<CommandResult> {
    this.batches.push([...commands]);
    const result = await this.driver.applyRoutes(commands);
    if (commands.length > 0) this.changes.announce('routes applied');
    return result;
  }

  observeInterfaces(): Promise<ObservedInterface[]> {
    return this.driver.observeInterfaces();
  }

  private readonly changes = new Announcer();

  watch(onChange: OnChange): Watch {
    return this.changes.watch(onChange);
  }

  /** A test changed the routes by hand: tell the watchers, as the kernel would. */
  announce(what = 'routes changed by hand'): void {
    this.changes.announce(what);
  }
}

export interface FakeIptablesOptions {
  /** whether Docker's DOCKER-USER chain exists (default true) */
  dockerUser?: boolean;
  forwardPolicy?: 'ACCEPT' | 'DROP';
  backend?: ObservedFirewall['backend'];
}

/** The real iptables driver over emulated iptables-save/-restore (emulated-iptables.ts). */
export class FakeIptablesDriver implements IptablesDriver, EmulatedIptablesHost {
  tables = new Map<FirewallTable, SavedTable>();
  backend: ObservedFirewall['backend'];
  /** the tools the driver runs; tests may wrap them */
  runner: Runner = emulatedIptables(this);
  private readonly driver = createIptablesDriver({ runner: (argv, options) => this.runner(argv, options) });

  constructor(options: FakeIptablesOptions = {}) {
    this.backend = options.backend ?? 'nf_tables';
    const filter = emptyTable('filter');
    filter.chains.set('FORWARD', options.forwardPolicy ?? 'ACCEPT');
    if (options.dockerUser ?? true) {
      filter.chains.set('DOCKER-USER', '-');
      filter.rules.set('FORWARD', ['-A FORWARD -j DOCKER-USER']);
      filter.rules.set('DOCKER-USER', ['-A DOCKER-USER -j RETURN']);
    }
    this.tables.set('filter', filter);
    this.tables.set('nat', emptyTable('nat'));
  }

  /** The rules of one chain (any chain), as iptables-save prints them. */
  rulesOf(table: FirewallTable, chain: string): string[] {
    return this.tables.get(table)?.rules.get(chain) ?? [];
  }

  observe(): Promise<ObservedFirewall> {
    return this.driver.observe();
  }

  async applyFirewall(chains: readonly FirewallChain[], jumps: readonly FirewallJump[]): Promise<FirewallResults> {
    const results = await this.driver.applyFirewall(chains, jumps);
    if (chains.length + jumps.length > 0) this.changes.announce('firewall applied');
    return results;
  }

  async removeAll(): Promise<CommandResult> {
    const result = await this.driver.removeAll();
    this.changes.announce('firewall removed');
    return result;
  }

  private readonly changes = new Announcer();

  watch(onChange: OnChange): Watch {
    return this.changes.watch(onChange);
  }

  /** A test changed the tables by hand: tell the watchers, as xtables-monitor would. */
  announce(what = 'firewall changed by hand'): void {
    this.changes.announce(what);
  }
}

/** A network on the fake engine, with the names of the containers attached to it. */
export type FakeDockerNetwork = Omit<ObservedDockerNetwork, 'containers'> & { containers: string[] };

/** The real driver's decisions and messages on an engine in memory; daemon.json is kept in memory too. */
export class FakeDockerDriver implements DockerDriver {
  available = true;
  version = '20.10.24';
  bip: string | null = '172.17.0.1/16';
  /** every network on the engine by name, managed or not */
  networks = new Map<string, FakeDockerNetwork>();
  daemonJson: Record<string, unknown> = {};
  restarts = 0;
  private nextId = 1;

  async observe(): Promise<ObservedDocker> {
    if (!this.available) return { available: false, version: null, networks: [], bip: null };
    const managed = [...this.networks.values()].filter((n) => n.labels[MANAGED_LABEL] === 'true');
    return {
      available: true,
      version: this.version,
      networks: managed.map((n) => ({ ...structuredClone(n), containers: n.containers.length })),
      bip: this.bip,
    };
  }

  async createNetwork(command: DockerNetworkCreate): Promise<CommandResult> {
    const started = performance.now();
    const invalid = firstInvalid([command]);
    if (invalid) return resultWithoutProcess(false, '', `${invalid}\n`, started);
    if (!this.available) return resultWithoutProcess(false, '', `docker: ${NO_ENGINE}\n`, started);
    const { name } = command;
    const labels = networkLabels(command);
    const existing = this.networks.get(name);
    if (existing) {
      const difference = networkDifference(existing, command, labels);
      return difference === null
        ? resultWithoutProcess(true, `network ${name} already exists as wanted (${existing.id.slice(0, 12)})\n`, '', started)
        : resultWithoutProcess(false, '', `network ${name} already exists but ${difference}; remove it first (docker network rm ${name})\n`, started);
    }
    const id = (this.nextId++).toString(16).padStart(64, '0');
    this.networks.set(name, { id, name, subnet: command.subnet, gateway: command.gateway, labels, options: { ...command.options }, containers: [] });
    this.changes.announce(`docker network create: ${name}`);
    return resultWithoutProcess(true, `created network ${name} (${id.slice(0, 12)})\n`, '', started);
  }

  async removeNetwork(command: DockerNetworkRemove): Promise<CommandResult> {
    const started = performance.now();
    const invalid = firstInvalid([command]);
    if (invalid) return resultWithoutProcess(false, '', `${invalid}\n`, started);
    if (!this.available) return resultWithoutProcess(false, '', `docker: ${NO_ENGINE}\n`, started);
    const { name } = command;
    const existing = this.networks.get(name);
    if (!existing) return resultWithoutProcess(true, `network ${name} is already gone\n`, '', started);
    if (existing.labels[MANAGED_LABEL] !== 'true') {
      return resultWithoutProcess(false, '', `network ${name} is not labelled ${MANAGED_LABEL}=true; crossdock removes only networks it created\n`, started);
    }
    if (existing.containers.length > 0) {
      return resultWithoutProcess(
        false,
        '',
        `network ${name} still has containers: ${existing.containers.join(', ')}; stop them or disconnect them from ${name} first\n`,
        started,
      );
    }
    this.networks.delete(name);
    this.changes.announce(`docker network destroy: ${name}`);
    return resultWithoutProcess(true, `removed network ${name}\n`, '', started);
  }

  private readonly changes = new Announcer();

  watch(onChange: OnChange): Watch {
    return this.changes.watch(onChange);
  }

  /** A test changed the engine by hand: tell the watchers, as the engine's events would. */
  announce(what = 'docker network changed by hand'): void {
    this.changes.announce(what);
  }

  async setBip(command: DockerDaemonBip, { daemonJsonPath, restartCommand }: SetBipOptions): Promise<CommandResult> {
    const started = performance.now();
    const invalid = firstInvalid([command]);
    if (invalid) return resultWithoutProcess(false, '', `${invalid}\n`, started);
    const { bip } = command;
    if (this.daemonJson.bip === bip && this.bip === bip) return resultWithoutProcess(true, `bip is already ${bip}\n`, '', started);
    if (restartCommand === null) {
      return resultWithoutProcess(
        false,
        '',
        `setting bip ${bip} needs an engine restart, which this executor may not do; start it with --allow-engine-restart, ` +
          `or set "bip": "${bip}" in ${daemonJsonPath} and restart dockerd by hand\n`,
        started,
      );
    }
    this.daemonJson = { ...this.daemonJson, bip };
    this.bip = bip;
    this.restarts += 1;
    return resultWithoutProcess(true, `wrote "bip": "${bip}" to ${daemonJsonPath}; the engine answers with it\n`, '', started);
  }
}

export class FakeSysctlDriver implements SysctlDriver {
  /** null: the kernel has no such file */
  values: Record<SysctlKey, string | null> = { 'net.ipv4.ip_forward': '0' };

  async observe(): Promise<Record<SysctlKey, string | null>> {
    return { ...this.values };
  }

  async write(command: SysctlSet): Promise<CommandResult> {
    const started = performance.now();
    const invalid = firstInvalid([command]);
    if (invalid) return resultWithoutProcess(false, '', `${invalid}\n`, started);
    const { key, value } = command;
    if (this.values[key] === null) {
      return resultWithoutProcess(false, '', `cannot set ${key}: ENOENT: no such file or directory, open '/proc/sys/${key.replaceAll('.', '/')}'\n`, started);
    }
    this.values[key] = value;
    return resultWithoutProcess(true, `${key} = ${value}\n`, '', started);
  }
}

/**
 * The real VXLAN driver over an emulated `ip`/`bridge` that answers its commands from memory
 * as iproute2 and the kernel do (the netns test, test/vxlan-netns.test.ts, runs the real tools).
 */
export class FakeVxlanDriver implements VxlanDriver {
  device: ObservedVxlanDevice | null = null;
  /** VTEP address -> MAC */
  neighbours = new Map<string, string>();
  /** MAC -> remote underlay address */
  fdb = new Map<string, string>();
  /** every apply call, in order */
  batches: VxlanCommand[][] = [];
  runner: Runner = (argv, options) => Promise.resolve(this.emulate(argv, options?.input ?? ''));
  private readonly driver = createVxlanDriver({ runner: (argv, options) => this.runner(argv, options) });
  private readonly changes = new Announcer();

  observe(): Promise<ObservedVxlan> {
    return this.driver.observe();
  }

  async apply(commands: readonly VxlanCommand[]): Promise<CommandResult[]> {
    this.batches.push([...commands]);
    const results = await this.driver.apply(commands);
    if (commands.length > 0) this.changes.announce('vxlan applied');
    return results;
  }

  watch(onChange: OnChange): Watch {
    return this.changes.watch(onChange);
  }

  /** A test changed the device or its entries by hand: tell the watchers, as `ip monitor` would. */
  announce(what = 'vxlan changed by hand'): void {
    this.changes.announce(what);
  }

  private emulate(argv: readonly string[], input: string): CommandResult {
    const done = (ok: boolean, stdout = '', stderr = ''): CommandResult => ({ ok, exitCode: ok ? 0 : 1, stdout, stderr, durationMs: 0 });
    const command = argv.join(' ');
    const missing = `Device "${VXLAN_DEVICE}" does not exist.\n`;
    if (command === `ip -d -json address show dev ${VXLAN_DEVICE}`) {
      const d = this.device;
      if (!d) return done(false, '', missing);
      const link = {
        ifname: d.name,
        mtu: d.mtu,
        address: d.mac,
        flags: d.up ? ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'] : ['BROADCAST', 'MULTICAST'],
        ...(d.alias === null ? {} : { ifalias: d.alias }),
        linkinfo:
          d.vni === null ? { info_kind: 'dummy' } : { info_kind: 'vxlan', info_data: { id: d.vni, local: d.local, port: d.port, learning: d.learning } },
        addr_info: d.addresses.map((a) => ({ family: 'inet', local: a.split('/')[0], prefixlen: Number(a.split('/')[1]) })),
      };
      return done(true, JSON.stringify([link]));
    }
    if (command === `ip -4 -json neigh show dev ${VXLAN_DEVICE} nud permanent`) {
      if (!this.device) return done(false, '', missing);
      return done(true, JSON.stringify([...this.neighbours].map(([dst, lladdr]) => ({ dst, lladdr, state: ['PERMANENT'] }))));
    }
    if (command === `bridge -json fdb show dev ${VXLAN_DEVICE}`) {
      if (!this.device) return done(false, '', missing);
      return done(true, JSON.stringify([...this.fdb].map(([mac, dst]) => ({ mac, dst, flags: ['self'], state: 'permanent' }))));
    }
    if (command === 'ip -force -batch -' || command === 'bridge -force -batch -') {
      const errors: string[] = [];
      input
        .split('\n')
        .filter(Boolean)
        .forEach((line, i) => {
          const problem = this.runLine(argv[0]!, line.split(' '));
          if (problem) errors.push(`${problem}\nCommand failed -:${i + 1}\n`);
        });
      return done(errors.length === 0, '', errors.join(''));
    }
    return done(false, '', `the emulated ip does not run "${command}"\n`);
  }

  /** One batch line as the driver writes it; the error the tool prints, or null. */
  private runLine(tool: string, w: string[]): string | null {
    const noDevice = 'Cannot find device "crossdock.vx"';
    const at = (word: string) => w[w.indexOf(word) + 1] ?? '';
    const key = `${tool} ${w[0]} ${w[1]}`;
    if (w.includes('dev') || w[0] === 'link') {
      const dev = w[0] === 'link' && w[1] !== 'set' ? w[2] : at('dev');
      if (dev !== VXLAN_DEVICE) return `the emulated ${tool} does not touch ${dev}`;
    }
    const d = this.device;
    switch (key) {
      case 'ip link add':
        if (d) return 'RTNETLINK answers: File exists';
        this.device = {
          name: VXLAN_DEVICE,
          alias: null,
          vni: Number(at('id')),
          port: Number(at('dstport')),
          local: at('local'),
          learning: !w.includes('nolearning'),
          mac: '02:00:00:00:00:99',
          mtu: 1500,
          up: false,
          addresses: [],
        };
        return null;
      case 'ip link set':
        if (!d) return noDevice;
        Object.assign(d, { mac: at('address'), mtu: Number(at('mtu')), alias: at('alias'), up: w.includes('up') });
        return null;
      case 'ip link delete':
        if (!d) return noDevice;
        this.device = null;
        this.neighbours.clear();
        this.fdb.clear();
        return null;
      case 'ip address flush':
        if (!d) return noDevice;
        d.addresses = [];
        return null;
      case 'ip address replace':
        if (!d) return noDevice;
        if (!d.addresses.includes(w[2]!)) d.addresses.push(w[2]!);
        return null;
      case 'ip neigh replace':
        if (!d) return noDevice;
        this.neighbours.set(w[2]!, at('lladdr'));
        return null;
      case 'ip neigh delete':
        if (!d) return noDevice;
        return this.neighbours.delete(w[2]!) ? null : 'RTNETLINK answers: No such file or directory';
      case 'bridge fdb replace':
        if (!d) return noDevice;
        this.fdb.set(w[2]!, at('dst'));
        return null;
      case 'bridge fdb delete':
        if (!d) return noDevice;
        return this.fdb.delete(w[2]!) ? null : 'RTNETLINK answers: No such file or directory';
      default:
        return `the emulated ${tool} does not run "${w.join(' ')}"`;
    }
  }
}
