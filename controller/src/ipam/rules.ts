// Validation of operator input for IPAM: pure functions that return the parsed value or
// throw an ApiError whose message says what would be right.
import {
  echo,
  containsCidr,
  formatCidr,
  formatIPv4,
  hostRange,
  isPrintable,
  isUnicastAddress,
  lastAddress,
  parseCidr,
  parseIPv4,
  specialPurposeRangeOverlapping,
  type Cidr,
} from '@crossdock/shared';
import { ENCAPSULATIONS, type Encapsulation } from '../planner/desired.ts';
import { ApiError } from '../errors.ts';

/** Smallest subnet we hand out: a Docker bridge needs a gateway and at least one container. */
export const MAX_SUBNET_PREFIX_LENGTH = 30;
/** Every entry is two rules on every host; a pool that needs more should name wider networks. */
export const MAX_ALLOW_FROM = 64;

export function requireCidr(text: string, field: string): Cidr {
  const result = parseCidr(text);
  if (result.ok) return result.cidr;
  if (result.reason === 'host-bits') {
    throw new ApiError('CIDR_HOST_BITS_SET', `${field} ${result.message}; use ${result.suggestion}`);
  }
  throw new ApiError('INVALID_CIDR', `${field}: ${result.message}`);
}

/** Why `cidr` can never hold container subnets (it overlaps loopback, multicast, ...), or null. */
export function specialRangeProblem(cidr: Cidr): string | null {
  const special = specialPurposeRangeOverlapping(cidr);
  if (!special) return null;
  return (
    `${formatCidr(cidr)} overlaps ${formatCidr(special.cidr)}, ${special.purpose}; containers cannot use addresses there. ` +
    'Use a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16), such as 10.100.0.0/16'
  );
}

/** A pool's range: a CIDR that may hold container subnets. */
export function requirePoolRange(text: string, field: string): Cidr {
  const cidr = requireCidr(text, field);
  const problem = specialRangeProblem(cidr);
  if (problem) throw new ApiError('POOL_RANGE_NOT_ALLOWED', `${field} ${problem}`);
  return cidr;
}

/**
 * A pool's allowFrom list: outside networks whose traffic may reach the pool's subnets on every
 * host. Each a CIDR without host bits, none of them every address, none inside another (the
 * route schema bounds the count to MAX_ALLOW_FROM).
 */
export function requireAllowFrom(list: readonly string[], field = 'allowFrom'): Cidr[] {
  const parsed = list.map((text, i) => requireCidr(text, `${field}[${i}]`));
  parsed.forEach((cidr, i) => {
    if (cidr.prefixLength === 0) {
      throw new ApiError(
        'INVALID_PREFIX_LENGTH',
        `${field}[${i}] ${formatCidr(cidr)} is every address and would open the pool's containers to any network; list only the networks that need to reach them, such as 192.0.2.0/24`,
      );
    }
    parsed.forEach((other, j) => {
      if (j !== i && containsCidr(other, cidr) && (j < i || !containsCidr(cidr, other))) {
        const what = other.prefixLength === cidr.prefixLength ? 'repeats' : 'is inside';
        throw new ApiError('VALIDATION_FAILED', `${field}[${i}] ${formatCidr(cidr)} ${what} ${field}[${j}] ${formatCidr(other)}; list each network once`);
      }
    });
  });
  return parsed;
}

export function requireSubnetPrefixLength(prefixLength: number, pool: Cidr, field: string): number {
  if (!Number.isInteger(prefixLength) || prefixLength < pool.prefixLength || prefixLength > MAX_SUBNET_PREFIX_LENGTH) {
    throw new ApiError(
      'INVALID_PREFIX_LENGTH',
      `${field} ${prefixLength} does not fit pool ${formatCidr(pool)}; use a length from ${pool.prefixLength} to ${MAX_SUBNET_PREFIX_LENGTH}`,
    );
  }
  return prefixLength;
}

/** The gateway for a subnet: the given address if it is a usable host address, else its first host. */
export function resolveGateway(subnet: Cidr, gateway: string | undefined): string {
  const { first, last } = hostRange(subnet);
  if (gateway === undefined) return formatIPv4(first);
  const address = parseIPv4(gateway);
  const cidr = formatCidr(subnet);
  if (address === null) {
    throw new ApiError('INVALID_GATEWAY', `gateway ${echo(gateway)} is not an IPv4 address; use a host address of ${cidr} such as ${formatIPv4(first)}`);
  }
  if (address < subnet.network || address > lastAddress(subnet)) {
    throw new ApiError('INVALID_GATEWAY', `gateway ${gateway} is outside ${cidr}; use a host address such as ${formatIPv4(first)}`);
  }
  if (address === subnet.network) {
    throw new ApiError('INVALID_GATEWAY', `gateway ${gateway} is the network address of ${cidr}; use a host address such as ${formatIPv4(first)}`);
  }
  if (address > last) {
    throw new ApiError('INVALID_GATEWAY', `gateway ${gateway} is the broadcast address of ${cidr}; use a host address such as ${formatIPv4(first)}`);
  }
  return gateway;
}

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Host and pool names: one DNS-label rule, one code. */
export function requireDnsLabel(name: string, what: 'host' | 'pool'): string {
  if (!DNS_LABEL.test(name)) {
    // The suggestion needs only the first characters; a 1 MB name need not be lowercased whole.
    const hint =
      name
        .slice(0, 256)
        .toLowerCase()
        .replace(/[^a-z0-9-]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 63) || (what === 'host' ? 'host-1' : 'default');
    throw new ApiError(
      'INVALID_NAME',
      `${what} name ${echo(name)} is not a DNS label; use 1 to 63 lowercase letters, digits and inner hyphens, such as "${hint}"`,
    );
  }
  return name;
}

export function requireUnicastAddress(text: string, field = 'address'): string {
  const address = parseIPv4(text);
  if (address === null) {
    throw new ApiError('INVALID_ADDRESS', `${field} ${echo(text)} is not an IPv4 address; use four decimal octets such as 192.168.32.20`);
  }
  if (!isUnicastAddress(address)) {
    throw new ApiError(
      'INVALID_ADDRESS',
      `${field} ${text} is not a unicast host address (it is in 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16 or 224.0.0.0 and above); use the host's address on the shared network`,
    );
  }
  return text;
}

// Linux: at most 15 bytes, no '/', ':' or whitespace, not '.' or '..'.
const INTERFACE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,14}$/;

export function requireInterfaceName(name: string): string {
  if (!INTERFACE_NAME.test(name) || name === '.' || name === '..') {
    throw new ApiError(
      'INVALID_INTERFACE',
      `interface ${echo(name)} is not a Linux interface name; use up to 15 letters, digits, '.', '-' or '_', such as eth0`,
    );
  }
  return name;
}

const DOCKER_NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
/** Every engine has these; the executor would refuse to create or remove them. */
const PREDEFINED_DOCKER_NETWORKS = ['bridge', 'host', 'none'];

export function requireNetworkName(name: string): string {
  if (PREDEFINED_DOCKER_NETWORKS.includes(name)) {
    throw new ApiError(
      'INVALID_NETWORK_NAME',
      `network "${name}" is one of the networks every Docker engine already has (${PREDEFINED_DOCKER_NETWORKS.join(', ')}); use another name, such as "crossdock"`,
    );
  }
  if (!DOCKER_NETWORK_NAME.test(name)) {
    throw new ApiError(
      'INVALID_NETWORK_NAME',
      `network ${echo(name)} is not a valid Docker network name; start with a letter or digit and use up to 63 letters, digits, '_', '.' or '-', such as "crossdock"`,
    );
  }
  return name;
}

const LABEL_KEY = /^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/i;
const MAX_LABELS = 64;
const MAX_LABEL_VALUE_LENGTH = 256;

export function requireLabels(labels: Record<string, string>): Record<string, string> {
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) {
    throw new ApiError('INVALID_LABELS', `${entries.length} labels given; use at most ${MAX_LABELS}`);
  }
  for (const [key, value] of entries) {
    if (!LABEL_KEY.test(key)) {
      throw new ApiError(
        'INVALID_LABELS',
        `label key ${echo(key)} is invalid; use up to 63 letters, digits, '.', '_', '/' or '-', starting and ending with a letter or digit`,
      );
    }
    if (value.length > MAX_LABEL_VALUE_LENGTH) {
      throw new ApiError(
        'INVALID_LABELS',
        `label "${key}" has a value of ${value.length} characters; use at most ${MAX_LABEL_VALUE_LENGTH} printable characters`,
      );
    }
    // Control and format characters (U+0085, U+202E, U+200B, ...) do not show as themselves.
    if (!isPrintable(value)) {
      throw new ApiError(
        'INVALID_LABELS',
        `label "${key}" has the value ${echo(value)}, which holds control or invisible characters (escaped here); use printable characters only`,
      );
    }
  }
  return labels;
}

/** Docker and the kernel take 68 and up; below IPv4's 576 minimum datagram, TCP stalls. */
export const MIN_POOL_MTU = 576;
export const MAX_POOL_MTU = 65_535;

/** A pool's encapsulation mode: one of ENCAPSULATIONS, named in the message when it is not. */
export function requireEncapsulation(value: string, field = 'encapsulation'): Encapsulation {
  if ((ENCAPSULATIONS as readonly string[]).includes(value)) return value as Encapsulation;
  throw new ApiError(
    'VALIDATION_FAILED',
    `${field} ${echo(value)} is not a mode; use "never" (direct routes only), "crossSubnet" (VXLAN only to peers off-link, the default) or "always"`,
  );
}

/** An explicit MTU for a pool's Docker networks, or null to go back to the underlay's less 50. */
export function requirePoolMtu(value: number | null, field = 'mtu'): number | null {
  if (value === null) return null;
  if (!Number.isInteger(value) || value < MIN_POOL_MTU || value > MAX_POOL_MTU) {
    throw new ApiError(
      'VALIDATION_FAILED',
      `${field} ${value} is out of range; use a whole number from ${MIN_POOL_MTU} to ${MAX_POOL_MTU}, such as 1450 (a 1500-byte underlay less VXLAN's 50), or null for that default`,
    );
  }
  return value;
}
