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
import type { DockerDriver, ObservedDocker, ObservedDockerNetwork, SetBipOptions } from './docker.ts';
import { emulatedIp, type EmulatedIpHost, type ForeignRoute } from './emulated-ip.ts';
import { emptyTable, emulatedIptables, type EmulatedIptablesHost } from './emulated-iptables.ts';
import { createIpDriver, type IpDriver, type ObservedInterface, type ObservedRoute, type RouteCommand } from './ip.ts';
import { createIptablesDriver, type FirewallResults, type IptablesDriver, type ObservedFirewall, type SavedTable } from './iptables.ts';
import { firstInvalid, resultWithoutProcess, type Runner } from './run.ts';
import type { SysctlDriver } from './sysctl.ts';

const result = (ok: boolean, stdout = '', stderr = ''): CommandResult => ({
  ok,
  exitCode: ok ? 0 : 1,
  stdout: stdout && `${stdout}\n`,
  stderr: stderr && `${stderr}\n`,
  durationMs: 0,
});

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

  applyRoutes(commands: readonly RouteCommand[]): Promise<CommandResult> {
    this.batches.push([...commands]);
    return this.driver.applyRoutes(commands);
  }

  observeInterfaces(): Promise<ObservedInterface[]> {
    return this.driver.observeInterfaces();
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

  applyFirewall(chains: readonly FirewallChain[], jumps: readonly FirewallJump[]): Promise<FirewallResults> {
    return this.driver.applyFirewall(chains, jumps);
  }

  removeAll(): Promise<CommandResult> {
    return this.driver.removeAll();
  }
}

export class FakeDockerDriver implements DockerDriver {
  available = true;
  version = '20.10.24';
  bip: string | null = '172.17.0.1/16';
  /** every network on the engine by name, managed or not */
  networks = new Map<string, ObservedDockerNetwork>();
  daemonJson: Record<string, unknown> = {};
  restarts = 0;
  private nextId = 1;

  async observe(): Promise<ObservedDocker> {
    if (!this.available) return { available: false, version: null, networks: [], bip: null };
    const managed = [...this.networks.values()].filter((n) => n.labels[MANAGED_LABEL] === 'true');
    return { available: true, version: this.version, networks: managed.map((n) => structuredClone(n)), bip: this.bip };
  }

  async createNetwork(c: DockerNetworkCreate): Promise<CommandResult> {
    if (!this.available) return result(false, '', 'docker: connect ENOENT /var/run/docker.sock');
    const labels = networkLabels(c);
    const existing = this.networks.get(c.name);
    if (existing) {
      const same = existing.subnet === c.subnet && existing.gateway === c.gateway && Object.entries(labels).every(([k, v]) => existing.labels[k] === v);
      return same ? result(true, `network ${c.name} already exists as wanted`) : result(false, '', `network ${c.name} already exists but differs; remove it first`);
    }
    const id = (this.nextId++).toString(16).padStart(64, '0');
    this.networks.set(c.name, { id, name: c.name, subnet: c.subnet, gateway: c.gateway, labels, options: { ...c.options }, containers: 0 });
    return result(true, `created network ${c.name}`);
  }

  async removeNetwork({ name }: DockerNetworkRemove): Promise<CommandResult> {
    const existing = this.networks.get(name);
    if (!existing) return result(true, `network ${name} is already gone`);
    if (existing.labels[MANAGED_LABEL] !== 'true') {
      return result(false, '', `network ${name} is not labelled ${MANAGED_LABEL}=true; crossdock removes only networks it created`);
    }
    if (existing.containers > 0) return result(false, '', `network ${name} still has containers: ${existing.containers}; stop them first`);
    this.networks.delete(name);
    return result(true, `removed network ${name}`);
  }

  async setBip({ bip }: DockerDaemonBip, { restartCommand }: SetBipOptions): Promise<CommandResult> {
    if (this.daemonJson.bip === bip && this.bip === bip) return result(true, `bip is already ${bip}`);
    if (restartCommand === null) {
      return result(false, '', `setting bip ${bip} needs an engine restart; start the executor with --allow-engine-restart`);
    }
    this.daemonJson = { ...this.daemonJson, bip };
    this.bip = bip;
    this.restarts += 1;
    return result(true, `wrote "bip": "${bip}"; the engine answers with it`);
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
