// validateCommand: TypeBox for the shape, then our own checks for every value, so a command
// that passes can be rendered into ip/iptables text and handed to the host as it is.
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { ValueError } from '@sinclair/typebox/value';
import { ECHO_MAX_CHARS, echo } from '../echo.ts';
import { formatIPv4, hostRange, maskOf, parseCidr, parseIPv4, isUnicastAddress } from '../ip/ipv4.ts';
import {
  COMMAND_KINDS,
  COMMAND_SCHEMAS,
  IPTABLES_CHAIN_NAME_MAX_LENGTH,
  JUMP_SOURCE_TABLE,
  MANAGED_LABEL,
  type Command,
  type FirewallRule,
  type FirewallTable,
  VXLAN_DEVICE,
} from './schema.ts';

export type CommandValidation = { ok: true; command: Command } | { ok: false; error: string };
export type CommandsValidation = { ok: true; commands: Command[] } | { ok: false; error: string; index: number };

/** Docker's own networks: never created or removed by crossdock. */
const PREDEFINED_DOCKER_NETWORKS = new Set(['bridge', 'host', 'none']);
/** Narrower than this is no room for containers; wider is a mistake, not a container subnet. */
const BRIDGE_PREFIX_MIN = 8;
const BRIDGE_PREFIX_MAX = 30;
const DOCKER_KEY_MAX_LENGTH = 256;
/** 169.254.0.0/16 (its first and last /24 are reserved, RFC 3927) */
const LINK_LOCAL_HIGH_BITS = 0xa9fe;

// Compiled once: the interpreted Value.Errors walk was most of a 10,000-route job's own time.
const CHECKS = Object.fromEntries(Object.entries(COMMAND_SCHEMAS).map(([kind, schema]) => [kind, TypeCompiler.Compile(schema)])) as Record<
  keyof typeof COMMAND_SCHEMAS,
  TypeCheck<(typeof COMMAND_SCHEMAS)[keyof typeof COMMAND_SCHEMAS]>
>;

export function validateCommand(raw: unknown): CommandValidation {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, error: 'a command must be an object with a "kind" field' };
  }
  const kind: unknown = (raw as { kind?: unknown }).kind;
  if (typeof kind !== 'string' || !Object.hasOwn(COMMAND_SCHEMAS, kind)) {
    return {
      ok: false,
      error: `kind: ${typeof kind === 'string' ? echo(kind) : JSON.stringify(kind)} is not a command; use one of ${COMMAND_KINDS.join(', ')}`,
    };
  }
  const check = CHECKS[kind as keyof typeof COMMAND_SCHEMAS];
  if (!check.Check(raw)) {
    const shapeError = check.Errors(raw).First();
    return { ok: false, error: `${kind} ${shapeError ? describeShapeError(shapeError) : 'does not have the shape of this command'}` };
  }
  const command = raw as Command;
  const problem = checkCommand(command);
  if (problem) return { ok: false, error: `${kind} ${problem}` };
  return { ok: true, command };
}

/** All or nothing: the first invalid command rejects the whole list. */
export function validateCommands(raw: unknown[]): CommandsValidation {
  const commands: Command[] = [];
  for (const [index, item] of raw.entries()) {
    const result = validateCommand(item);
    if (!result.ok) return { ok: false, index, error: `command ${index}: ${result.error}` };
    commands.push(result.command);
  }
  return { ok: true, commands };
}

function checkCommand(c: Command): string | null {
  switch (c.kind) {
    case 'route.replace':
      return (
        field('dst', checkRouteDestination(c.dst)) ??
        field('via', c.dev === VXLAN_DEVICE ? checkVtep(c.via) : checkNextHop(c.via)) ??
        field('dev', checkInterfaceName(c.dev))
      );
    case 'route.delete':
      return field('dst', checkRouteDestination(c.dst));
    case 'firewall.chain':
      return (
        field('chain', checkChainName(c.chain)) ?? c.rules.reduce<string | null>((found, rule, i) => found ?? checkRule(c.table, rule, `rules[${i}]`), null)
      );
    case 'firewall.jump': {
      const table = JUMP_SOURCE_TABLE[c.from];
      if (table !== c.table) return `from: chain ${c.from} is in table ${table}, not ${c.table}; use table ${table}`;
      return field('to', checkChainName(c.to));
    }
    case 'docker.network.create':
      return (
        field('name', checkDockerNetworkName(c.name)) ??
        field('subnet', checkBridgeSubnet(c.subnet)) ??
        field('gateway', checkGatewayInSubnet(c.gateway, c.subnet)) ??
        field('options', checkDockerKeys(c.options)) ??
        field('labels', checkDockerKeys(c.labels)) ??
        checkManagedLabel(c.labels)
      );
    case 'docker.network.remove':
      return field('name', checkDockerNetworkName(c.name));
    case 'docker.daemon.bip':
      return field('bip', checkBip(c.bip));
    case 'sysctl.set':
      return null;
    case 'vxlan.device':
      return field('local', checkNextHop(c.local)) ?? field('mac', checkMac(c.mac)) ?? field('address', checkVtepAddress(c.address));
    case 'vxlan.device.delete':
      return null;
    case 'neigh.replace':
      return field('address', checkVtep(c.address)) ?? field('mac', checkMac(c.mac));
    case 'neigh.delete':
      return field('address', checkVtep(c.address));
    case 'fdb.replace':
      return field('mac', checkMac(c.mac)) ?? field('dst', checkNextHop(c.dst));
    case 'fdb.delete':
      return field('mac', checkMac(c.mac));
  }
}

/** Lower-case colon form, as `ip -json` prints it; unicast (a multicast MAC would flood) and not all zero. */
export function checkMac(text: string): string | null {
  const hint = 'use six lower-case hex pairs such as 02:cd:00:00:00:01';
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(text)) return `${echo(text)} is not a MAC address; ${hint}`;
  if (text === '00:00:00:00:00:00') return `00:00:00:00:00:00 is the flood entry, not a peer; ${hint}`;
  if (Number.parseInt(text.slice(0, 2), 16) & 1) return `${text} is a multicast MAC address; ${hint}`;
  return null;
}

/** A VTEP address: unicast, or link-local (crossdock's default VTEP range is link-local: never routed off a host). */
function checkVtep(text: string): string | null {
  const address = parseIPv4(text);
  if (address !== null && address >>> 16 === LINK_LOCAL_HIGH_BITS && (address & 0xff00) !== 0 && (address & 0xff00) !== 0xff00) return null;
  return checkNextHop(text);
}

function checkVtepAddress(text: string): string | null {
  const match = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  const address = match ? parseIPv4(match[1] ?? '') : null;
  if (!match || address === null) return `${echo(text)} is not address/prefix; give the VTEP address and its range's prefix, such as 169.254.64.1/18`;
  const length = Number(match[2]);
  if (length < 8 || length > 32) return `prefix length /${length} of "${text}" is out of range; use /8 to /32, such as /18`;
  if (checkVtep(match[1]!) !== null) return `"${text}" is not a unicast or link-local address; use one such as 169.254.64.1/18`;
  return null;
}

const field = (name: string, problem: string | null) => (problem === null ? null : `${name}: ${problem}`);

/**
 * Linux's rules (1 to 15 bytes, not "." or "..", no "/", ":" or whitespace), plus what keeps the
 * name one plain token in `ip -batch` and iptables-restore text: printable ASCII without quotes,
 * backslash or "#", and no leading "-" or "!" (read as an option or a negation).
 */
export function checkInterfaceName(name: string): string | null {
  const hint = 'use a Linux interface name such as eth0';
  if (name.length < 1 || name.length > 15) return `interface name ${echo(name)} must be 1 to 15 characters; ${hint}`;
  if (name === '.' || name === '..') return `${echo(name)} is not a valid interface name; ${hint}`;
  if (!/^[\x21-\x7e]+$/.test(name)) return `interface name ${echo(name)} contains whitespace, control or non-ASCII characters; ${hint}`;
  const bad = /[/:"'\\#]/.exec(name);
  if (bad) return `interface name ${echo(name)} contains "${bad[0]}"; ${hint}`;
  if (/^[-!]/.test(name)) return `interface name ${echo(name)} starts with "${name[0]}"; ${hint}`;
  return null;
}

function checkCidr(text: string): string | null {
  const parsed = parseCidr(text);
  return parsed.ok ? null : parsed.message;
}

function checkRouteDestination(text: string): string | null {
  const problem = checkCidr(text);
  if (problem) return problem;
  if (text.endsWith('/0')) return `"${text}" is the default route; crossdock routes only container subnets, such as 10.2.0.0/24`;
  return null;
}

function checkNextHop(text: string): string | null {
  const address = parseIPv4(text);
  if (address === null) return `${echo(text)} is not an IPv4 address; use four decimal octets such as 198.51.100.12`;
  if (!isUnicastAddress(address) || address === 0xffffffff) {
    return `"${text}" is not a unicast address; use the peer host's address, such as 198.51.100.12`;
  }
  return null;
}

function checkChainName(name: string): string | null {
  if (name.length > IPTABLES_CHAIN_NAME_MAX_LENGTH) {
    return `chain name "${name}" is ${name.length} characters; iptables allows at most ${IPTABLES_CHAIN_NAME_MAX_LENGTH}`;
  }
  return null;
}

function checkRule(table: FirewallTable, rule: FirewallRule, at: string): string | null {
  for (const key of ['source', 'destination'] as const) {
    const value = rule[key];
    if (value === undefined) continue;
    const problem = checkCidr(value);
    if (problem) return `${at}.${key}: ${problem}`;
    // iptables-save drops a /0 match, so the rule would never read back as rendered.
    if (value.endsWith('/0')) return `${at}.${key}: "${value}" matches every address; leave ${key} out instead`;
  }
  for (const key of ['inInterface', 'outInterface'] as const) {
    const value = rule[key];
    const problem = value === undefined ? null : checkInterfaceName(value);
    if (problem) return `${at}.${key}: ${problem}`;
  }
  if ((rule.protocol === undefined) !== (rule.dport === undefined)) {
    return `${at}: protocol and dport go together (a UDP port match); give both, such as protocol "udp" and dport 4789, or neither`;
  }
  if (table === 'nat') {
    if (rule.target === 'DROP') return `${at}.target: iptables forbids DROP in the nat table; use ACCEPT or RETURN`;
    // nat chains are jumped from POSTROUTING, where the input interface is unknown.
    if (rule.inInterface !== undefined) return `${at}.inInterface: not allowed in the nat table (POSTROUTING has no input interface); use outInterface`;
  }
  return null;
}

function checkDockerNetworkName(name: string): string | null {
  if (PREDEFINED_DOCKER_NETWORKS.has(name)) return `"${name}" is one of Docker's predefined networks; use another name such as crossdock`;
  return null;
}

function checkBridgeSubnet(text: string): string | null {
  const parsed = parseCidr(text);
  if (!parsed.ok) return parsed.message;
  const length = parsed.cidr.prefixLength;
  if (length < BRIDGE_PREFIX_MIN || length > BRIDGE_PREFIX_MAX) {
    return `prefix length /${length} of "${text}" is out of range for a bridge network; use /${BRIDGE_PREFIX_MIN} to /${BRIDGE_PREFIX_MAX}, such as /24`;
  }
  return null;
}

function checkGatewayInSubnet(gateway: string, subnet: string): string | null {
  const address = parseIPv4(gateway);
  if (address === null) return `${echo(gateway)} is not an IPv4 address; use four decimal octets such as 10.1.0.1`;
  const parsed = parseCidr(subnet);
  if (!parsed.ok) return parsed.message;
  const { first, last } = hostRange(parsed.cidr);
  if (address < first || address > last) {
    const what = address === first - 1 ? 'the network address of' : address === last + 1 ? 'the broadcast address of' : 'outside';
    return `gateway ${gateway} is ${what} ${subnet}; use a host address such as ${formatIPv4(first)}`;
  }
  return null;
}

function checkDockerKeys(map: Record<string, string>): string | null {
  const long = Object.keys(map).find((key) => key.length > DOCKER_KEY_MAX_LENGTH);
  return long === undefined ? null : `key "${long.slice(0, 32)}..." is ${long.length} characters; use at most ${DOCKER_KEY_MAX_LENGTH}`;
}

function checkManagedLabel(labels: Record<string, string>): string | null {
  const value = labels[MANAGED_LABEL];
  if (value !== undefined && value !== 'true') {
    return `labels["${MANAGED_LABEL}"]: must be "true" (crossdock adds it to every network it creates), not ${echo(value)}`;
  }
  return null;
}

function checkBip(text: string): string | null {
  const match = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  const address = match ? parseIPv4(match[1] ?? '') : null;
  if (!match || address === null) return `${echo(text)} is not address/prefix; write the bridge address and its prefix, such as 10.1.0.1/24`;
  const length = Number(match[2]);
  if (length < BRIDGE_PREFIX_MIN || length > BRIDGE_PREFIX_MAX) {
    return `prefix length /${length} of "${text}" is out of range for a bridge; use /${BRIDGE_PREFIX_MIN} to /${BRIDGE_PREFIX_MAX}, such as /24`;
  }
  const network = (address & maskOf(length)) >>> 0;
  const { first, last } = hostRange({ network, prefixLength: length });
  const block = `${formatIPv4(network)}/${length}`;
  if (address < first || address > last) {
    const what = address === network ? 'the network address' : 'the broadcast address';
    return `${formatIPv4(address)} is ${what} of ${block} (dockerd would not start); use a host address such as ${formatIPv4(first)}/${length}`;
  }
  return null;
}

/** "/rules/0/comment" -> "rules[0].comment"; "/labels/a.b" -> 'labels["a.b"]'. */
function fieldPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

function describeShapeError(error: ValueError): string {
  const schema = error.schema as {
    description?: string;
    const?: unknown;
    anyOf?: { const?: unknown }[];
    patternProperties?: Record<string, unknown>;
  };
  const at = error.path === '' ? 'command' : fieldPath(error.path);
  if (error.message === 'Unexpected property') {
    const pattern = schema.patternProperties ? Object.keys(schema.patternProperties)[0] : undefined;
    const key = (error.path.split('/').pop() ?? '').replaceAll('~1', '/').replaceAll('~0', '~');
    return pattern
      ? `${at}: key ${JSON.stringify(key)} must match ${pattern}${schema.description ? ` (${schema.description})` : ''}`
      : `${at}: unknown field; remove it`;
  }
  const literals = schema.anyOf ? schema.anyOf.map((s) => s.const) : schema.const !== undefined ? [schema.const] : null;
  const oneOf = literals?.every((v) => typeof v === 'string') ? `one of ${literals.map((v) => JSON.stringify(v)).join(', ')}` : null;
  if (error.value === undefined) return `${at}: missing; ${oneOf ? `use ${oneOf}` : `give ${schema.description ?? 'a value'}`}`;
  const got = gotValue(error.value);
  if (oneOf) return `${at}: must be ${oneOf}; got ${got}`;
  const expected = schema.description ? ` (${schema.description})` : '';
  return `${at}: ${error.message.charAt(0).toLowerCase()}${error.message.slice(1)}${expected}; got ${got}`;
}

/** A refused value as a message quotes it: strings by echo(), anything else as JSON, both cut short. */
function gotValue(value: unknown): string {
  if (typeof value === 'string') return echo(value);
  const json = JSON.stringify(value) ?? String(value);
  return json.length > ECHO_MAX_CHARS ? `${json.slice(0, ECHO_MAX_CHARS)}…` : json;
}
