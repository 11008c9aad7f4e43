// In-memory drivers with the real ones' semantics, for unit tests of the executor and the
// planner. State is public: set it up directly, assert on it afterwards.
import {
  MANAGED_LABEL,
  networkLabels,
  renderRule,
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
import { createIpDriver, type IpDriver, type ObservedInterface, type ObservedRoute, type RouteCommand } from './ip.ts';
import { isCrossdockChain, jumpTarget, summarizeSaved, type FirewallResults, type IptablesDriver, type ObservedFirewall, type SavedTable } from './iptables.ts';
import type { Runner } from './run.ts';
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

export class FakeIptablesDriver implements IptablesDriver {
  /** table -> chains and their rules, as iptables-save lines */
  tables = new Map<FirewallTable, SavedTable>();
  backend: ObservedFirewall['backend'];

  constructor(options: FakeIptablesOptions = {}) {
    this.backend = options.backend ?? 'nf_tables';
    const filter: SavedTable = { chains: new Map([['INPUT', 'ACCEPT'], ['FORWARD', options.forwardPolicy ?? 'ACCEPT'], ['OUTPUT', 'ACCEPT']]), rules: new Map() };
    if (options.dockerUser ?? true) {
      filter.chains.set('DOCKER-USER', '-');
      filter.rules.set('FORWARD', ['-A FORWARD -j DOCKER-USER']);
      filter.rules.set('DOCKER-USER', ['-A DOCKER-USER -j RETURN']);
    }
    const nat: SavedTable = { chains: new Map([['PREROUTING', 'ACCEPT'], ['INPUT', 'ACCEPT'], ['OUTPUT', 'ACCEPT'], ['POSTROUTING', 'ACCEPT']]), rules: new Map() };
    this.tables.set('filter', filter);
    this.tables.set('nat', nat);
  }

  /** The rules of one chain (any chain), as iptables-save prints them. */
  rulesOf(table: FirewallTable, chain: string): string[] {
    return this.table(table).rules.get(chain) ?? [];
  }

  async observe(): Promise<ObservedFirewall> {
    return summarizeSaved({ backend: this.backend, tables: this.tables });
  }

  private applyChains(commands: readonly FirewallChain[]): CommandResult {
    for (const c of commands) {
      const t = this.table(c.table);
      t.chains.set(c.chain, '-');
      t.rules.set(c.chain, c.rules.map((rule) => renderRule(c.chain, rule)));
    }
    return result(true, `${commands.length} chains replaced`);
  }

  private ensureJump({ table, from, to, position }: FirewallJump): CommandResult {
    const t = this.table(table);
    if (!t.chains.has(from)) return result(false, '', `chain ${from} does not exist in table ${table}`);
    if (!t.chains.has(to)) return result(false, '', `chain ${to} does not exist in table ${table}; apply its firewall.chain first`);
    const plain = `-A ${from} -j ${to}`;
    const others = (t.rules.get(from) ?? []).filter((rule) => rule !== plain);
    const wanted = Math.min(position, others.length + 1);
    others.splice(wanted - 1, 0, plain);
    t.rules.set(from, others);
    return result(true, `${plain} at position ${wanted}`);
  }

  /** Chains first, then each jump: what the real driver does in one transaction per table. */
  async applyFirewall(chains: readonly FirewallChain[], jumps: readonly FirewallJump[]): Promise<FirewallResults> {
    const chainsResult = chains.length > 0 ? this.applyChains(chains) : result(true, 'no chains');
    const jumpResults: CommandResult[] = [];
    for (const jump of jumps) jumpResults.push(this.ensureJump(jump));
    return { chains: chainsResult, jumps: jumpResults };
  }

  async removeAll(): Promise<CommandResult> {
    for (const t of this.tables.values()) {
      for (const name of [...t.chains.keys()].filter(isCrossdockChain)) {
        t.chains.delete(name);
        t.rules.delete(name);
      }
      for (const [chain, rules] of t.rules) t.rules.set(chain, rules.filter((rule) => jumpTarget(rule) === null));
    }
    return result(true, 'crossdock chains removed');
  }

  private table(name: FirewallTable): SavedTable {
    const t = this.tables.get(name) ?? { chains: new Map(), rules: new Map() };
    this.tables.set(name, t);
    return t;
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
  values: Record<SysctlKey, string | null> = { 'net.ipv4.ip_forward': '0' };

  async observe(): Promise<Record<SysctlKey, string | null>> {
    return { ...this.values };
  }

  async read(key: SysctlKey): Promise<string> {
    const value = this.values[key];
    if (value === null) throw new Error(`no sysctl ${key}`);
    return value;
  }

  async write({ key, value }: SysctlSet): Promise<CommandResult> {
    this.values[key] = value;
    return result(true, `${key} = ${value}`);
  }
}
