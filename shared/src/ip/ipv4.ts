// IPv4 addresses and CIDR blocks as unsigned 32-bit integers. No I/O.
import { echo } from '../echo.ts';

export interface Cidr {
  /** network address, host bits zero, as an unsigned 32-bit integer */
  readonly network: number;
  readonly prefixLength: number;
}

export type CidrParseError =
  | { ok: false; reason: 'syntax'; message: string }
  | { ok: false; reason: 'prefix'; message: string }
  | { ok: false; reason: 'host-bits'; message: string; suggestion: string };

export type CidrParseResult = { ok: true; cidr: Cidr } | CidrParseError;

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Dotted quad to integer; null for anything else (no leading zeros, no shorthand). */
export function parseIPv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!OCTET.test(part)) return null;
    value = value * 256 + Number(part);
  }
  return value;
}

export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

export function isIPv4(text: string): boolean {
  return parseIPv4(text) !== null;
}

/** Number of addresses in a block of this prefix length (2^(32-len)). */
export function blockSize(prefixLength: number): number {
  return 2 ** (32 - prefixLength);
}

export function maskOf(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

export function parseCidr(text: string): CidrParseResult {
  const slash = text.indexOf('/');
  if (slash < 0) {
    return { ok: false, reason: 'syntax', message: `${echo(text)} is not a CIDR block; write it as address/prefix, such as 10.1.0.0/24` };
  }
  const address = parseIPv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === null) {
    return {
      ok: false,
      reason: 'syntax',
      message: `${echo(text.slice(0, slash))} in ${echo(text)} is not an IPv4 address; use four decimal octets such as 10.1.0.0`,
    };
  }
  if (!/^\d+$/.test(prefixText)) {
    return {
      ok: false,
      reason: 'prefix',
      message: `${echo(`/${prefixText}`)} in ${echo(text)} is not a prefix length; write a whole number from 0 to 32, such as /24`,
    };
  }
  if (!/^(?:0|[1-9]\d?)$/.test(prefixText) || Number(prefixText) > 32) {
    return {
      ok: false,
      reason: 'prefix',
      message: `prefix length ${echo(`/${prefixText}`)} in ${echo(text)} is out of range; use a whole number from 0 to 32`,
    };
  }
  const prefixLength = Number(prefixText);
  const network = (address & maskOf(prefixLength)) >>> 0;
  if (network !== address) {
    const suggestion = `${formatIPv4(network)}/${prefixLength}`;
    return {
      ok: false,
      reason: 'host-bits',
      suggestion,
      message: `"${text}" has host bits set; the block containing it is ${suggestion}`,
    };
  }
  return { ok: true, cidr: { network, prefixLength } };
}

export function isCidr(text: string): boolean {
  return parseCidr(text).ok;
}

/** Parse a CIDR that is known to be valid (from our own database); throws otherwise. */
export function mustParseCidr(text: string): Cidr {
  const result = parseCidr(text);
  if (!result.ok) throw new Error(`invalid CIDR ${text}: ${result.message}`);
  return result.cidr;
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIPv4(cidr.network)}/${cidr.prefixLength}`;
}

/** Last address of the block (the broadcast address for prefixes up to /30). */
export function lastAddress(cidr: Cidr): number {
  return cidr.network + blockSize(cidr.prefixLength) - 1;
}

export function containsAddress(cidr: Cidr, address: number): boolean {
  return address >= cidr.network && address <= lastAddress(cidr);
}

export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return inner.prefixLength >= outer.prefixLength && containsAddress(outer, inner.network);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.network <= lastAddress(b) && b.network <= lastAddress(a);
}

/** True if `network` is a multiple of the block size of `prefixLength`. */
export function isAligned(network: number, prefixLength: number): boolean {
  return network % blockSize(prefixLength) === 0;
}

/**
 * The usable host range of a block. /31 and /32 have no network or broadcast address
 * (RFC 3021), so every address is usable.
 */
export function hostRange(cidr: Cidr): { first: number; last: number } {
  if (cidr.prefixLength >= 31) return { first: cidr.network, last: lastAddress(cidr) };
  return { first: cidr.network + 1, last: lastAddress(cidr) - 1 };
}

/**
 * Ranges no host or container subnet may use, with what they are for (RFC 6890): a pool in one
 * would hand out loopback or multicast addresses as gateways.
 */
export const SPECIAL_PURPOSE_RANGES: ReadonlyArray<{ readonly cidr: Cidr; readonly purpose: string }> = [
  { cidr: { network: 0x00000000, prefixLength: 8 }, purpose: 'the "this network" range' },
  { cidr: { network: 0x7f000000, prefixLength: 8 }, purpose: 'the loopback range' },
  { cidr: { network: 0xa9fe0000, prefixLength: 16 }, purpose: 'the link-local range' },
  { cidr: { network: 0xe0000000, prefixLength: 4 }, purpose: 'the multicast range' },
  { cidr: { network: 0xf0000000, prefixLength: 4 }, purpose: 'the reserved range (with the broadcast address)' },
];

/** The first special-purpose range that `cidr` overlaps, if any. */
export function specialPurposeRangeOverlapping(cidr: Cidr): { cidr: Cidr; purpose: string } | undefined {
  return SPECIAL_PURPOSE_RANGES.find((range) => overlaps(range.cidr, cidr));
}

/** Unicast: not 0.0.0.0/8, loopback, link-local, multicast, reserved or broadcast. */
export function isUnicastAddress(address: number): boolean {
  return !SPECIAL_PURPOSE_RANGES.some((range) => containsAddress(range.cidr, address));
}

/**
 * The fewest CIDR blocks that hold exactly the given addresses, lowest first: each run of
 * consecutive addresses split into the largest aligned blocks that fit it. A firewall that
 * matches these blocks matches those addresses and no other; a run of 1,000 consecutive
 * addresses takes at most 18 blocks, 1,000 scattered ones up to 1,000.
 */
export function coverAddresses(addresses: Iterable<number>): Cidr[] {
  // a typed array sorts numerically in native code, with no comparator call per comparison
  const sorted = Float64Array.from(addresses).sort();
  const blocks: Cidr[] = [];
  let i = 0;
  while (i < sorted.length) {
    let end = sorted[i]!;
    let j = i + 1;
    // extend the run over consecutive addresses and repeats
    while (j < sorted.length && (sorted[j] === end + 1 || sorted[j] === end)) end = sorted[j++]!;
    for (let start = sorted[i]!; start <= end; ) {
      let prefixLength = 32;
      // widen while the block stays aligned and inside the run
      while (prefixLength > 0 && isAligned(start, prefixLength - 1) && start + blockSize(prefixLength - 1) - 1 <= end) prefixLength--;
      blocks.push({ network: start, prefixLength });
      start += blockSize(prefixLength);
    }
    i = j;
  }
  return blocks;
}
