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
} from '@crossdock/shared';
import { networkDifference, type DockerDriver, type ObservedDocker, type ObservedDockerNetwork, type SetBipOptions } from './docker.ts';
import { emulatedIp, type EmulatedIpHost, type ForeignRoute } from './emulated-ip.ts';
import { emptyTable, emulatedIptables, type EmulatedIptablesHost } from './emulated-iptables.ts';
import { createIpDriver, type IpDriver, type ObservedInterface, type ObservedRoute, type RouteCommand } from './ip.ts';
import { createIptablesDriver, type FirewallResults, type IptablesDriver, type ObservedFirewall, type SavedTable } from './iptables.ts';
import { firstInvalid, resultWithoutProcess, type Runner } from './run.ts';
import type { SysctlDriver } from './sysctl.ts';
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
