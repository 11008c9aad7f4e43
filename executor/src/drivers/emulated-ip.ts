// The `ip` commands the ip driver runs, answered from memory as iproute2 and the kernel answer
// them. FakeIpDriver is the real driver over this runner, so the fake cannot decide differently
// from the driver; test/drivers/ip.contract.test.ts holds this emulation to the real tool.
import { CROSSDOCK_ROUTE_PROTOCOL, containsAddress, formatIPv4, maskOf, mustParseCidr, parseIPv4, type CommandResult } from '@crossdock/shared';
import type { ObservedInterface, ObservedRoute } from './ip.ts';
import type { Runner } from './run.ts';

/** A route crossdock did not make. */
export interface ForeignRoute {
  dst: string;
  via: string | null;
  dev: string;
  /** as `ip -N` prints it; absent for boot, the protocol of a plain `ip route add` */
  protocol?: number;
  metric?: number;
}

/** What the emulated kernel holds: the fake driver's state. */
export interface EmulatedIpHost {
  /** routes tagged with crossdock's protocol, by destination */
  routes: Map<string, ObservedRoute>;
  foreignRoutes: Map<string, ForeignRoute>;
  interfaces: ObservedInterface[];
  /** destination -> error: the next batch line for it fails with this message */
  failures: Map<string, string>;
}

/** What `ip -N -4 -json route show` prints for one route. */
interface ListedRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  flags: string[];
}

const OURS = String(CROSSDOCK_ROUTE_PROTOCOL);
const KERNEL_PROTOCOL = '2';
const LINK_SCOPE = '253';
/** ip's exit status for a command it does not know. */
const EXIT_UNKNOWN_COMMAND = 255;

const done = (ok: boolean, stdout: string, stderr = '', exitCode = ok ? 0 : 1): CommandResult => ({ ok, exitCode, stdout, stderr, durationMs: 0 });

export function emulatedIp(host: EmulatedIpHost): Runner {
  return async (argv, options = {}) => {
    const command = argv.join(' ');
    if (command === `ip -N -4 -json route show table main proto ${OURS}`) {
      // Filtered by protocol, ip leaves the protocol out.
      return done(
        true,
        JSON.stringify(
          mainTable(host)
            .filter((r) => r.protocol === OURS)
            .map(({ protocol: _, ...r }) => r),
        ),
      );
    }
    if (command === 'ip -N -4 -json route show table main') return done(true, JSON.stringify(mainTable(host)));
    if (command === 'ip -json address show') {
      return done(true, JSON.stringify(host.interfaces.map((i) => ({ ifname: i.name, mtu: i.mtu, addr_info: i.addresses.map(inet) }))));
    }
    if (command === 'ip -force -batch -') return batch(host, options.input ?? '');
    return done(false, '', `the emulated ip does not run "${command}"\n`, EXIT_UNKNOWN_COMMAND);
  };
}

/** The main table in the kernel's order: by destination address, then longest prefix first. */
function mainTable(host: EmulatedIpHost): ListedRoute[] {
  const listed: ListedRoute[] = [];
  for (const r of host.routes.values()) listed.push({ dst: r.dst, ...(r.via === null ? {} : { gateway: r.via }), dev: r.dev, protocol: OURS, flags: [] });
  for (const r of host.foreignRoutes.values()) {
    listed.push({
      dst: r.dst,
      ...(r.via === null ? {} : { gateway: r.via }),
      dev: r.dev,
      ...(r.protocol === undefined ? {} : { protocol: String(r.protocol) }),
      ...(r.metric ? { metric: r.metric } : {}),
      flags: [],
    });
  }
  for (const { dst, dev, address } of connected(host)) listed.push({ dst, dev, protocol: KERNEL_PROTOCOL, scope: LINK_SCOPE, prefsrc: address, flags: [] });
  const key = (r: ListedRoute) => mustParseCidr(r.dst);
  listed.sort((a, b) => key(a).network - key(b).network || key(b).prefixLength - key(a).prefixLength || (a.metric ?? 0) - (b.metric ?? 0));
  // ip prints a host route without its prefix and 0.0.0.0/0 as "default".
  return listed.map((r) => ({ ...r, dst: r.dst === '0.0.0.0/0' ? 'default' : r.dst.replace(/\/32$/, '') }));
}

/** The route the kernel adds for each address on an interface (lo's live in the local table). */
function connected(host: Pick<EmulatedIpHost, 'interfaces'>): { dst: string; dev: string; address: string }[] {
  return host.interfaces
    .filter((i) => i.name !== 'lo')
    .flatMap((i) =>
      i.addresses.map((a) => {
        const [address = '', length = '32'] = a.split('/');
        const network = ((parseIPv4(address) ?? 0) & maskOf(Number(length))) >>> 0;
        return { dst: `${formatIPv4(network)}/${length}`, dev: i.name, address };
      }),
    );
}

/** `ip -force -batch -`: each line on its own; a failing line prints its error and "Command failed -:<n>". */
function batch(host: EmulatedIpHost, input: string): CommandResult {
  let stderr = '';
  input.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const error = runLine(host, line.trim().split(/\s+/));
    if (error !== null) stderr += `${error}\nCommand failed -:${i + 1}\n`;
  });
  return done(stderr === '', '', stderr);
}

/** One batch line as the driver writes it (renderIpBatchLine); the error ip prints, or null. */
function runLine(host: EmulatedIpHost, words: string[]): string | null {
  const [object, verb, dst = ''] = words;
  const option = (name: string) => {
    const at = words.indexOf(name);
    return at < 0 ? undefined : words[at + 1];
  };
  if (object !== 'route' || option('proto') !== OURS) return `the emulated ip does not run "${words.join(' ')}"`;
  const failure = host.failures.get(dst);
  if (failure !== undefined) {
    host.failures.delete(dst);
    return failure;
  }
  if (verb === 'delete') {
    if (!host.routes.delete(dst)) return 'RTNETLINK answers: No such process';
    return null;
  }
  if (verb !== 'replace') return `the emulated ip does not run "${words.join(' ')}"`;
  const via = option('via') ?? '';
  const dev = option('dev') ?? '';
  const link = host.interfaces.find((i) => i.name === dev);
  if (!link) return `Cannot find device "${dev}"`;
  const gateway = parseIPv4(via);
  const onLink = gateway !== null && connected({ interfaces: [link] }).some((c) => containsAddress(mustParseCidr(c.dst), gateway));
  if (!onLink) return 'Error: Nexthop has invalid gateway.';
  // `replace` takes over the destination's route of the same metric, whoever made it.
  const foreign = host.foreignRoutes.get(dst);
  if (foreign && !foreign.metric) host.foreignRoutes.delete(dst);
  host.routes.set(dst, { dst, via, dev });
  return null;
}

function inet(address: string) {
  const [local = '', prefixlen = '32'] = address.split('/');
  return { family: 'inet', local, prefixlen: Number(prefixlen) };
}
