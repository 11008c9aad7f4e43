// The executor's whole vocabulary: one TypeBox schema per command kind, the static types
// derived from them, and the constants both sides agree on. Shape only; the semantic checks
// (CIDR math, interface names, table/chain pairings) live in validate.ts.
import { Type, type Static, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox';

/** crossdock's own route protocol number (name it in /etc/iproute2/rt_protos to read it). */
export const CROSSDOCK_ROUTE_PROTOCOL = 252;
/** Docker label carried by every network crossdock creates; nothing else is ever removed. */
export const MANAGED_LABEL = 'io.crossdock.managed';
export const CROSSDOCK_CHAIN_PATTERN = '^CROSSDOCK-[A-Z0-9-]{1,20}$';
/** iptables refuses chain names of 29 characters or more. */
export const IPTABLES_CHAIN_NAME_MAX_LENGTH = 28;

export const FIREWALL_TABLES = ['filter', 'nat'] as const;
export type FirewallTable = (typeof FIREWALL_TABLES)[number];
export const FIREWALL_TARGETS = ['ACCEPT', 'RETURN', 'DROP'] as const;
export const JUMP_SOURCES = ['DOCKER-USER', 'FORWARD', 'POSTROUTING', 'INPUT'] as const;
export type JumpSource = (typeof JUMP_SOURCES)[number];
/** The table each jump source chain lives in. */
export const JUMP_SOURCE_TABLE: Record<JumpSource, FirewallTable> = {
  'DOCKER-USER': 'filter',
  FORWARD: 'filter',
  POSTROUTING: 'nat',
  INPUT: 'filter',
};
/**
 * crossdock's one VXLAN device per host. Every neighbour and forwarding-database command names
 * it, so the executor never changes an entry of another device.
 */
export const VXLAN_DEVICE = 'crossdock.vx';
/** The device's alias: a device of crossdock's name without it was not made by crossdock and is left alone. */
export const VXLAN_DEVICE_ALIAS = 'crossdock';
/** The IANA port for VXLAN (RFC 7348). */
export const VXLAN_DEFAULT_PORT = 4789;
export const VXLAN_DEFAULT_VNI = 7800;
/** VNIs are 24 bits. */
export const VXLAN_VNI_MAX = 16_777_215;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14): what encapsulation costs a packet. */
export const VXLAN_OVERHEAD_BYTES = 50;
export const SYSCTL_KEYS = ['net.ipv4.ip_forward'] as const;
export type SysctlKey = (typeof SYSCTL_KEYS)[number];

const COMMENT_PATTERN = '^[A-Za-z0-9 ._:/-]{1,64}$';
const DOCKER_NAME_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$';
const DOCKER_KEY_PATTERN = '^[a-z0-9][a-z0-9._-]*$';
const PRINTABLE_PATTERN = '^[^\\x00-\\x1f\\x7f-\\x9f]*$';
const DOCKER_TEXT_MAX_LENGTH = 256;
const DOCKER_MAP_MAX_ENTRIES = 64;
const CHAIN_RULES_MAX = 10_000;
/** Bounds address fields before parsing; the semantic checks give the precise message. */
const TEXT_FIELD_MAX_LENGTH = 64;
const JUMP_POSITION_MAX = 10_000;

function literals<const T extends string[]>(values: readonly [...T], description: string): TUnion<{ [K in keyof T]: TLiteral<T[K]> }> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    { description },
  ) as never;
}

const Cidr = Type.String({ maxLength: TEXT_FIELD_MAX_LENGTH, description: 'an IPv4 CIDR block such as 10.1.0.0/24' });
const IPv4 = Type.String({ maxLength: TEXT_FIELD_MAX_LENGTH, description: 'an IPv4 address such as 198.51.100.12' });
const InterfaceName = Type.String({ minLength: 1, maxLength: 15, description: 'a Linux interface name such as eth0' });
const ChainName = Type.String({ pattern: CROSSDOCK_CHAIN_PATTERN, description: 'a chain named CROSSDOCK-*, such as CROSSDOCK-FORWARD' });
const Table = literals(FIREWALL_TABLES, 'an iptables table');
const DockerName = Type.String({ pattern: DOCKER_NAME_PATTERN, description: 'a Docker network name such as crossdock' });
const DockerMap = Type.Record(
  Type.String({ pattern: DOCKER_KEY_PATTERN, maxLength: DOCKER_TEXT_MAX_LENGTH }),
  Type.String({ pattern: PRINTABLE_PATTERN, maxLength: DOCKER_TEXT_MAX_LENGTH, description: 'printable text without control characters' }),
  {
    additionalProperties: false,
    maxProperties: DOCKER_MAP_MAX_ENTRIES,
    description: 'keys in lower case letters, digits, ".", "_" and "-", such as com.docker.network.bridge.name',
  },
);

const command = <K extends string, P extends Record<string, TSchema>>(kind: K, properties: P) =>
  Type.Object({ kind: Type.Literal(kind), ...properties }, { additionalProperties: false });

export const RouteReplace = command('route.replace', { dst: Cidr, via: IPv4, dev: InterfaceName });
export type RouteReplace = Static<typeof RouteReplace>;

export const RouteDelete = command('route.delete', { dst: Cidr });
export type RouteDelete = Static<typeof RouteDelete>;

export const FirewallRule = Type.Object(
  {
    source: Type.Optional(Cidr),
    destination: Type.Optional(Cidr),
    inInterface: Type.Optional(InterfaceName),
    outInterface: Type.Optional(InterfaceName),
    /** only with dport: a UDP destination port match (`-p udp -m udp --dport N`) */
    protocol: Type.Optional(Type.Literal('udp', { description: 'the protocol "udp"' })),
    dport: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_535, description: 'a UDP port, 1 to 65535' })),
    target: literals(FIREWALL_TARGETS, 'a rule target'),
    comment: Type.Optional(Type.String({ pattern: COMMENT_PATTERN, description: '1 to 64 letters, digits, spaces and . _ : / -' })),
  },
  { additionalProperties: false },
);
export type FirewallRule = Static<typeof FirewallRule>;

export const FirewallChain = command('firewall.chain', {
  table: Table,
  chain: ChainName,
  rules: Type.Array(FirewallRule, { maxItems: CHAIN_RULES_MAX }),
});
export type FirewallChain = Static<typeof FirewallChain>;

export const FirewallJump = command('firewall.jump', {
  table: Table,
  from: literals(JUMP_SOURCES, 'the chain the jump is inserted into'),
  to: ChainName,
  position: Type.Integer({ minimum: 1, maximum: JUMP_POSITION_MAX, description: '1-based rule position' }),
});
export type FirewallJump = Static<typeof FirewallJump>;

export const DockerNetworkCreate = command('docker.network.create', {
  name: DockerName,
  subnet: Cidr,
  gateway: IPv4,
  options: DockerMap,
  labels: DockerMap,
});
export type DockerNetworkCreate = Static<typeof DockerNetworkCreate>;

export const DockerNetworkRemove = command('docker.network.remove', { name: DockerName });
export type DockerNetworkRemove = Static<typeof DockerNetworkRemove>;

export const DockerDaemonBip = command('docker.daemon.bip', {
  bip: Type.String({ maxLength: TEXT_FIELD_MAX_LENGTH, description: 'the bridge address and prefix, such as 10.1.0.1/24' }),
});
export type DockerDaemonBip = Static<typeof DockerDaemonBip>;

const MacAddress = Type.String({ maxLength: TEXT_FIELD_MAX_LENGTH, description: 'a unicast MAC address such as 02:cd:00:00:00:01' });
const VxlanDev = Type.Literal(VXLAN_DEVICE, { description: `crossdock's VXLAN device, ${VXLAN_DEVICE}` });

/** crossdock's VXLAN device, created or brought to these settings (static: no learning, no multicast). */
export const VxlanDevice = command('vxlan.device', {
  name: VxlanDev,
  vni: Type.Integer({ minimum: 1, maximum: VXLAN_VNI_MAX, description: `a VXLAN network identifier, 1 to ${VXLAN_VNI_MAX}` }),
  port: Type.Integer({ minimum: 1, maximum: 65_535, description: 'a UDP port, 1 to 65535' }),
  /** the host's own underlay address: the outer source of what it encapsulates */
  local: IPv4,
  mac: MacAddress,
  /** the host's VTEP address with the prefix of the VTEP range, such as 169.254.64.1/18 */
  address: Cidr,
  mtu: Type.Integer({ minimum: 576, maximum: 65_535, description: 'an MTU, 576 to 65535' }),
});
export type VxlanDevice = Static<typeof VxlanDevice>;

export const VxlanDeviceDelete = command('vxlan.device.delete', { name: VxlanDev });
export type VxlanDeviceDelete = Static<typeof VxlanDeviceDelete>;

/** A peer's VTEP address resolves to its VTEP MAC, permanently. */
export const NeighReplace = command('neigh.replace', { dev: VxlanDev, address: IPv4, mac: MacAddress });
export type NeighReplace = Static<typeof NeighReplace>;

export const NeighDelete = command('neigh.delete', { dev: VxlanDev, address: IPv4 });
export type NeighDelete = Static<typeof NeighDelete>;

/** Frames to a peer's VTEP MAC go in UDP to the peer's underlay address, permanently. */
export const FdbReplace = command('fdb.replace', { dev: VxlanDev, mac: MacAddress, dst: IPv4 });
export type FdbReplace = Static<typeof FdbReplace>;

export const FdbDelete = command('fdb.delete', { dev: VxlanDev, mac: MacAddress });
export type FdbDelete = Static<typeof FdbDelete>;

export type VxlanCommand = VxlanDevice | VxlanDeviceDelete | NeighReplace | NeighDelete | FdbReplace | FdbDelete;

export const SysctlSet = command('sysctl.set', {
  key: literals(SYSCTL_KEYS, 'an allow-listed sysctl key'),
  value: literals(['0', '1'] as const, 'a sysctl value'),
});
export type SysctlSet = Static<typeof SysctlSet>;

/** Every command schema by kind: the discriminator is `kind`. */
export const COMMAND_SCHEMAS = {
  'route.replace': RouteReplace,
  'route.delete': RouteDelete,
  'firewall.chain': FirewallChain,
  'firewall.jump': FirewallJump,
  'docker.network.create': DockerNetworkCreate,
  'docker.network.remove': DockerNetworkRemove,
  'docker.daemon.bip': DockerDaemonBip,
  'sysctl.set': SysctlSet,
  'vxlan.device': VxlanDevice,
  'vxlan.device.delete': VxlanDeviceDelete,
  'neigh.replace': NeighReplace,
  'neigh.delete': NeighDelete,
  'fdb.replace': FdbReplace,
  'fdb.delete': FdbDelete,
} as const;

export const Command = Type.Union([
  RouteReplace,
  RouteDelete,
  FirewallChain,
  FirewallJump,
  DockerNetworkCreate,
  DockerNetworkRemove,
  DockerDaemonBip,
  SysctlSet,
  VxlanDevice,
  VxlanDeviceDelete,
  NeighReplace,
  NeighDelete,
  FdbReplace,
  FdbDelete,
]);
export type Command = Static<typeof Command>;
export type CommandKind = Command['kind'];
export const COMMAND_KINDS = Object.keys(COMMAND_SCHEMAS) as CommandKind[];

/** What running one command (or one batch of them) produced. exitCode is null for API calls. */
export const CommandResult = Type.Object(
  {
    ok: Type.Boolean(),
    exitCode: Type.Union([Type.Integer(), Type.Null()]),
    stdout: Type.String(),
    stderr: Type.String(),
    durationMs: Type.Number({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type CommandResult = Static<typeof CommandResult>;
