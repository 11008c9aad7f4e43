// crossdock's VXLAN device and its static entries, through iproute2: the device, its address
// and its neighbour entries in one `ip -batch`, its forwarding-database entries in one
// `bridge -batch` (fdb entries are bridge(8)'s; ip has no command for them). Only the device
// named VXLAN_DEVICE whose alias is crossdock's is ever changed or removed, and only its entries.
import { performance } from 'node:perf_hooks';
import {
  VXLAN_DEVICE,
  VXLAN_DEVICE_ALIAS,
  renderBridgeBatchLine,
  renderCommand,
  renderVxlanIpLines,
  type CommandResult,
  type ObservedVxlan,
  type ObservedVxlanDevice,
  type VxlanCommand,
  type VxlanDevice,
} from '@crossdock/shared';
import { parseBatchErrors } from './ip.ts';
import { firstInvalid, resolveRunner, resultWithoutProcess, type DriverOptions } from './run.ts';
import { watchProcess, type OnChange, type Watch } from './watch.ts';

export interface VxlanDriver {
  /** The device (null when there is none), its permanent neighbours and its remote fdb entries. */
  observe(): Promise<ObservedVxlan>;
  /** One result per command, in order: one `ip -batch` and one `bridge -batch` at most. */
  apply(commands: readonly VxlanCommand[]): Promise<CommandResult[]>;
  /** Calls onChange when the device, its entries or any IPv4 address (the on-link facts) change. */
  watch(onChange: OnChange): Watch;
}

interface JsonLink {
  ifname: string;
  mtu: number;
  address?: string;
  flags?: string[];
  ifalias?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; port?: number; learning?: boolean } };
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

interface JsonNeigh {
  dst?: string;
  lladdr?: string;
  state?: string[];
}

interface JsonFdb {
  mac?: string;
  dst?: string;
  state?: string;
  flags?: string[];
}

/** A line of `ip monitor` about crossdock's device or its entries, or about an IPv4 address anywhere. */
const WATCHED_EVENT = new RegExp(`(\\b${VXLAN_DEVICE.replace('.', '\\.')}\\b)|(\\binet\\s)`);
/**
 * An address line of one of Docker's bridges (docker0, br-<network id>). The engine changes them
 * mid-operation (`docker network rm` drops the bridge's address before the network leaves its
 * list) and announces the operation itself once done (the Docker watch): observing on the
 * kernel's line reports a state the host is only passing through, a second report and a job.
 */
const DOCKER_BRIDGE_ADDRESS = /^(Deleted\s+)?\d+:\s+(docker0|br-[0-9a-f]{12})\s+inet\s/;

/** Whether a line of the link monitor may change what is observed (and is not Docker's to announce). */
export function isWatchedLinkEvent(line: string): boolean {
  if (DOCKER_BRIDGE_ADDRESS.test(line.trim())) return false;
  // Transitions of dynamic entries (INCOMPLETE, FAILED) are not ours: the device learns nothing.
  return WATCHED_EVENT.test(line) && !/\b(INCOMPLETE|FAILED|STALE|REACHABLE|DELAY|PROBE)\b/.test(line);
}

export function isOwnDevice(device: Pick<ObservedVxlanDevice, 'alias'> | null): boolean {
  return device !== null && device.alias === VXLAN_DEVICE_ALIAS;
}

/** The parameters only `link add` sets: a device that differs in one is made again. */
export function deviceMatches(device: ObservedVxlanDevice, wanted: Pick<VxlanDevice, 'vni' | 'port' | 'local'>): boolean {
  return device.vni === wanted.vni && device.port === wanted.port && device.local === wanted.local && !device.learning;
}

export function createVxlanDriver(options: DriverOptions = {}): VxlanDriver {
  const run = resolveRunner(options);

  async function readJson<T>(argv: string[]): Promise<T[]> {
    const result = await run(argv);
    if (!result.ok) throw new Error(`${argv.join(' ')} failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
    return result.stdout.trim() === '' ? [] : (JSON.parse(result.stdout) as T[]);
  }

  async function observeDevice(): Promise<ObservedVxlanDevice | null> {
    const argv = ['ip', '-d', '-json', 'address', 'show', 'dev', VXLAN_DEVICE];
    const result = await run(argv);
    if (!result.ok) {
      if (/does not exist/.test(result.stderr)) return null;
      throw new Error(`${argv.join(' ')} failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
    }
    const link = (JSON.parse(result.stdout || '[]') as JsonLink[])[0];
    return link ? deviceOf(link) : null;
  }

  return {
    async observe() {
      const device = await observeDevice();
      if (!device) return { device: null, neighbours: [], fdb: [] };
      const [neighbours, fdb] = await Promise.all([
        readJson<JsonNeigh>(['ip', '-4', '-json', 'neigh', 'show', 'dev', VXLAN_DEVICE, 'nud', 'permanent']),
        readJson<JsonFdb>(['bridge', '-json', 'fdb', 'show', 'dev', VXLAN_DEVICE]),
      ]);
      return {
        device,
        neighbours: neighbours
          .filter((n) => n.dst !== undefined && n.lladdr !== undefined && (n.state ?? []).includes('PERMANENT'))
          .map((n) => ({ address: n.dst!, mac: n.lladdr! })),
        fdb: fdb.filter((f) => f.mac !== undefined && f.dst !== undefined && f.state === 'permanent').map((f) => ({ mac: f.mac!, dst: f.dst! })),
      };
    },

    async apply(commands) {
      const started = performance.now();
      const all = (ok: boolean, stdout: string, stderr: string) => commands.map(() => resultWithoutProcess(ok, stdout, stderr, started));
      const invalid = firstInvalid(commands);
      if (invalid) return all(false, '', `${invalid}\n`);
      if (commands.length === 0) return [];
      let device: ObservedVxlanDevice | null;
      try {
        device = await observeDevice();
      } catch (error) {
        return all(false, '', `${(error as Error).message}; no VXLAN command was run\n`);
      }
      const results: Array<CommandResult | undefined> = new Array(commands.length);
      const notes: string[] = commands.map(() => '');
      const refuse = (i: number, why: string) => {
        results[i] = resultWithoutProcess(false, '', `${renderCommand(commands[i]!)}: refused: ${why}\n`, started);
      };
      const foreign = device !== null && !isOwnDevice(device);
      const foreignWhy = `a device named ${VXLAN_DEVICE} exists that crossdock did not make (its alias is ${device?.alias === null ? 'unset' : JSON.stringify(device?.alias)}); remove or rename it if crossdock should manage ${VXLAN_DEVICE}`;

      // The device first, then neighbours, then a removal of the device: every line in one batch.
      const ipLines: Array<{ line: string; index: number }> = [];
      const bridgeLines: Array<{ line: string; index: number }> = [];
      let exists = device !== null;
      const order = (c: VxlanCommand) => (c.kind === 'vxlan.device' ? 0 : c.kind === 'vxlan.device.delete' ? 2 : 1);
      const indexed = commands.map((command, index) => ({ command, index })).sort((a, b) => order(a.command) - order(b.command));
      for (const { command: c, index } of indexed) {
        if (foreign) {
          refuse(index, foreignWhy);
          continue;
        }
        switch (c.kind) {
          case 'vxlan.device': {
            const remake = device !== null && !deviceMatches(device, c);
            if (remake) ipLines.push({ line: `link delete ${c.name}`, index });
            const create = device === null || remake;
            // A device of ours holding other addresses (an older VTEP range) keeps only its own.
            if (device !== null && !remake && (device.addresses.length !== 1 || device.addresses[0] !== c.address)) {
              ipLines.push({ line: `address flush dev ${c.name}`, index });
            }
            for (const line of renderVxlanIpLines(c, create) ?? []) ipLines.push({ line, index });
            exists = true;
            break;
          }
          case 'vxlan.device.delete':
            if (!exists) notes[index] = 'the device was already gone\n';
            else ipLines.push({ line: renderVxlanIpLines(c)![0]!, index });
            exists = false;
            break;
          case 'neigh.replace':
          case 'neigh.delete':
            if (!exists) {
              if (c.kind === 'neigh.delete') notes[index] = 'the device is gone, and its entries with it\n';
              else refuse(index, `${VXLAN_DEVICE} does not exist; the job that creates it comes first`);
            } else ipLines.push({ line: renderVxlanIpLines(c)![0]!, index });
            break;
          case 'fdb.replace':
          case 'fdb.delete':
            if (!exists) {
              if (c.kind === 'fdb.delete') notes[index] = 'the device is gone, and its entries with it\n';
              else refuse(index, `${VXLAN_DEVICE} does not exist; the job that creates it comes first`);
            } else bridgeLines.push({ line: renderBridgeBatchLine(c), index });
            break;
        }
      }

      const failures = new Map<number, string[]>();
      const fail = (index: number, text: string) => failures.set(index, [...(failures.get(index) ?? []), text]);
      const batches: CommandResult[] = [];
      const runBatch = async (tool: 'ip' | 'bridge', lines: Array<{ line: string; index: number }>) => {
        if (lines.length === 0) return;
        const result = await run([tool, '-force', '-batch', '-'], { input: lines.map((l) => `${l.line}\n`).join('') });
        batches.push(result);
        const errors = parseBatchErrors(result.stderr);
        for (const [lineNumber, message] of errors) {
          const entry = lines[lineNumber - 1];
          if (!entry) continue;
          const c = commands[entry.index]!;
          // A removal that finds nothing to remove has reached its goal.
          const gone = /No such file or directory|Cannot find device|No such device/.test(message);
          if ((c.kind === 'neigh.delete' || c.kind === 'fdb.delete' || c.kind === 'vxlan.device.delete') && gone) {
            notes[entry.index] = 'already gone\n';
          } else fail(entry.index, `${tool} ${entry.line}: ${message}`);
        }
        if (!result.ok && errors.size === 0) for (const l of lines) fail(l.index, `${tool} -batch: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
      };
      await runBatch('ip', ipLines);
      // The fdb entries go on the device the ip batch made.
      await runBatch('bridge', bridgeLines);
      const durationMs = Math.round(performance.now() - started);
      const exitCode = batches.find((b) => !b.ok)?.exitCode ?? batches[0]?.exitCode ?? null;
      return commands.map((_, index) => {
        if (results[index]) return results[index];
        const failed = failures.get(index);
        return { ok: failed === undefined, exitCode, stdout: notes[index]!, stderr: (failed ?? []).map((f) => `${f}\n`).join(''), durationMs };
      });
    },

    watch(onChange) {
      // Neighbour and fdb events both arrive as `neigh` (fdb is the bridge family's neighbour table).
      return watchProcess(['ip', '-N', 'monitor', 'link', 'address', 'neigh'], {
        netns: options.netns,
        onLine: (line) => {
          if (isWatchedLinkEvent(line)) onChange(`vxlan: ${line.trim()}`);
        },
        onExit: (reason) => onChange(`the link monitor stopped (${reason}); looking again`),
      });
    },
  };
}

function deviceOf(link: JsonLink): ObservedVxlanDevice {
  const vxlan = link.linkinfo?.info_kind === 'vxlan' ? (link.linkinfo.info_data ?? {}) : null;
  return {
    name: link.ifname,
    alias: link.ifalias ?? null,
    vni: vxlan?.id ?? null,
    port: vxlan?.port ?? null,
    local: vxlan?.local ?? null,
    learning: vxlan?.learning ?? false,
    mac: link.address ?? '',
    mtu: link.mtu,
    up: (link.flags ?? []).includes('UP'),
    addresses: (link.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
  };
}
