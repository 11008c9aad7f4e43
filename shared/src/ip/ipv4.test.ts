import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  blockSize,
  containsAddress,
  containsCidr,
  coverAddresses,
  formatCidr,
  formatIPv4,
  hostRange,
  isAligned,
  isCidr,
  isIPv4,
  isUnicastAddress,
  lastAddress,
  maskOf,
  mustParseCidr,
  overlaps,
  parseCidr,
  parseIPv4,
  specialPurposeRangeOverlapping,
  type Cidr,
} from './ipv4.ts';

const ip = (text: string): number => {
  const value = parseIPv4(text);
  if (value === null) throw new Error(`bad test address ${text}`);
  return value;
};
const cidr = (text: string): Cidr => mustParseCidr(text);

/** Any prefix length and an aligned network for it. */
const arbCidr: fc.Arbitrary<Cidr> = fc
  .tuple(fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 0xffffffff }))
  .map(([prefixLength, address]) => ({ prefixLength, network: (address & maskOf(prefixLength)) >>> 0 }));

/** CIDRs inside 10.0.0.0/22 with long prefixes, so that overlaps and containment are common. */
const arbSmallCidr: fc.Arbitrary<Cidr> = fc
  .tuple(fc.integer({ min: 22, max: 32 }), fc.integer({ min: 0, max: 1023 }))
  .map(([prefixLength, offset]) => ({ prefixLength, network: ((0x0a000000 + offset) & maskOf(prefixLength)) >>> 0 }));

describe('parseIPv4 / formatIPv4', () => {
  it.each([
    ['0.0.0.0', 0],
    ['10.1.0.0', 0x0a010000],
    ['192.168.32.20', 0xc0a82014],
    ['255.255.255.255', 0xffffffff],
    ['1.2.3.4', 0x01020304],
    ['100.99.10.0', 0x64630a00],
  ])('parses %s', (text, value) => {
    expect(parseIPv4(text)).toBe(value);
    expect(formatIPv4(value)).toBe(text);
    expect(isIPv4(text)).toBe(true);
  });

  it.each([
    ['leading zero', '10.01.0.0'],
    ['leading zeros (octal look-alike)', '010.1.0.0'],
    ['double zero', '10.00.0.1'],
    ['octet 256', '10.1.256.0'],
    ['octet 300', '300.1.1.1'],
    ['octet 999', '1.2.3.999'],
    ['leading space', ' 10.1.0.0'],
    ['trailing space', '10.1.0.0 '],
    ['inner space', '10.1. 0.0'],
    ['empty', ''],
    ['three octets', '10.1.0'],
    ['five octets', '10.1.0.0.1'],
    ['empty octet', '10..0.1'],
    ['trailing dot', '10.1.0.0.'],
    ['negative', '10.-1.0.0'],
    ['plus sign', '10.+1.0.0'],
    ['hex', '0x0a.1.0.0'],
    ['single integer', '167772160'],
    ['letters', 'a.b.c.d'],
    ['CIDR', '10.1.0.0/24'],
    ['exponent', '1e1.1.1.1'],
    ['non-ASCII digit', '10.1.0.\u0661'],
  ])('refuses %s (%j)', (_why, text) => {
    expect(parseIPv4(text)).toBeNull();
    expect(isIPv4(text)).toBe(false);
  });

  it('formats every octet from its own byte', () => {
    expect(formatIPv4(0x80000001)).toBe('128.0.0.1');
    expect(formatIPv4(0xfffffffe)).toBe('255.255.255.254');
  });
});

describe('parseCidr', () => {
  it.each([
    ['10.1.0.0/16', 0x0a010000, 16],
    ['10.1.0.0/24', 0x0a010000, 24],
    ['0.0.0.0/0', 0, 0],
    ['10.1.2.3/32', 0x0a010203, 32],
    ['255.255.255.255/32', 0xffffffff, 32],
    ['128.0.0.0/1', 0x80000000, 1],
    ['10.1.0.4/30', 0x0a010004, 30],
    ['10.1.0.2/31', 0x0a010002, 31],
  ])('parses %s', (text, network, prefixLength) => {
    expect(parseCidr(text)).toEqual({ ok: true, cidr: { network, prefixLength } });
    expect(formatCidr({ network, prefixLength })).toBe(text);
    expect(isCidr(text)).toBe(true);
  });

  it.each([
    ['10.1.0.5/16', '10.1.0.0/16'],
    ['10.1.0.1/24', '10.1.0.0/24'],
    ['10.1.0.255/24', '10.1.0.0/24'],
    ['10.1.0.1/31', '10.1.0.0/31'],
    ['10.1.0.6/30', '10.1.0.4/30'],
    ['1.0.0.0/0', '0.0.0.0/0'],
    ['255.255.255.255/1', '128.0.0.0/1'],
  ])('%s has host bits set and suggests %s', (text, suggestion) => {
    const result = parseCidr(text);
    expect(result).toMatchObject({ ok: false, reason: 'host-bits', suggestion });
    expect(result.ok === false && result.message).toContain(suggestion);
    expect(isCidr(text)).toBe(false);
    expect(() => mustParseCidr(text)).toThrow(suggestion);
  });

  it.each([
    ['/33', '10.1.0.0/33'],
    ['/-1', '10.1.0.0/-1'],
    ['/100', '10.1.0.0/100'],
    ['empty prefix', '10.1.0.0/'],
    ['non-numeric prefix', '10.1.0.0/abc'],
    ['fractional prefix', '10.1.0.0/24.0'],
    ['prefix with space', '10.1.0.0/ 24'],
    ['two slashes', '10.1.0.0/24/24'],
  ])('refuses prefix %s (%s) with reason prefix', (_why, text) => {
    const result = parseCidr(text);
    expect(result).toMatchObject({ ok: false, reason: 'prefix' });
    expect(result.ok === false && result.message).toMatch(/0 to 32/);
  });

  it.each([
    ['missing slash', '10.1.0.0'],
    ['empty', ''],
    ['only a slash', '/'],
    ['missing address', '/24'],
    ['bad address', '10.1.0/24'],
    ['octet 256', '10.256.0.0/16'],
    ['leading zero', '10.01.0.0/16'],
    ['leading space', ' 10.1.0.0/16'],
    ['five octets', '10.1.0.0.0/16'],
  ])('refuses %s (%j) with reason syntax', (_why, text) => {
    const result = parseCidr(text);
    expect(result).toMatchObject({ ok: false, reason: 'syntax' });
    expect(result.ok === false && result.message.length).toBeGreaterThan(10);
  });

  it('the missing-slash message shows the expected form', () => {
    const result = parseCidr('10.1.0.0');
    expect(result.ok === false && result.message).toContain('10.1.0.0/24');
  });
});

describe('block arithmetic', () => {
  it.each([
    [0, 0, 2 ** 32],
    [1, 0x80000000, 2 ** 31],
    [8, 0xff000000, 2 ** 24],
    [24, 0xffffff00, 256],
    [31, 0xfffffffe, 2],
    [32, 0xffffffff, 1],
  ])('/%i: mask %i, %i addresses', (prefixLength, mask, size) => {
    expect(maskOf(prefixLength)).toBe(mask);
    expect(blockSize(prefixLength)).toBe(size);
  });

  it.each([
    ['10.1.0.0/24', '10.1.0.255'],
    ['0.0.0.0/0', '255.255.255.255'],
    ['10.1.0.7/32', '10.1.0.7'],
    ['10.1.0.0/31', '10.1.0.1'],
  ])('last address of %s is %s', (text, last) => {
    expect(lastAddress(cidr(text))).toBe(ip(last));
  });

  it.each([
    ['10.1.0.0/24', '10.1.0.0', true],
    ['10.1.0.0/24', '10.1.0.255', true],
    ['10.1.0.0/24', '10.1.1.0', false],
    ['10.1.0.0/24', '10.0.255.255', false],
    ['0.0.0.0/0', '255.255.255.255', true],
  ])('%s contains %s: %s', (block, address, expected) => {
    expect(containsAddress(cidr(block), ip(address))).toBe(expected);
  });
});

describe('containsCidr', () => {
  it.each([
    ['10.0.0.0/8', '10.1.0.0/24', true],
    ['10.0.0.0/8', '10.0.0.0/8', true],
    ['10.0.0.0/8', '10.255.255.255/32', true],
    ['10.1.0.0/24', '10.0.0.0/8', false],
    ['10.1.0.0/24', '10.1.1.0/24', false],
    ['10.1.0.0/24', '10.1.0.128/25', true],
    ['10.1.0.128/25', '10.1.0.0/25', false],
    ['0.0.0.0/0', '192.168.1.0/24', true],
    ['10.0.0.0/8', '11.0.0.0/8', false],
    ['10.0.0.0/8', '0.0.0.0/0', false],
  ])('%s contains %s: %s', (outer, inner, expected) => {
    expect(containsCidr(cidr(outer), cidr(inner))).toBe(expected);
  });
});

describe('overlaps', () => {
  it.each([
    ['10.1.0.0/24', '10.1.0.0/24', true],
    ['10.1.0.0/24', '10.1.1.0/24', false],
    ['10.1.0.0/23', '10.1.1.0/24', true],
    ['10.1.0.0/24', '10.0.0.0/8', true],
    ['10.1.0.255/32', '10.1.0.0/24', true],
    ['10.1.1.0/32', '10.1.0.0/24', false],
    ['0.0.0.0/0', '255.255.255.255/32', true],
    ['10.1.0.0/25', '10.1.0.128/25', false],
  ])('%s and %s: %s', (a, b, expected) => {
    expect(overlaps(cidr(a), cidr(b))).toBe(expected);
    expect(overlaps(cidr(b), cidr(a))).toBe(expected);
  });
});

describe('isAligned', () => {
  it.each([
    ['10.1.0.0', 24, true],
    ['10.1.0.0', 16, true],
    ['10.1.0.0', 15, false],
    ['10.1.0.128', 25, true],
    ['10.1.0.128', 24, false],
    ['10.1.0.4', 30, true],
    ['10.1.0.2', 30, false],
    ['10.1.0.3', 32, true],
    ['0.0.0.0', 0, true],
    ['128.0.0.0', 0, false],
  ])('%s aligned to /%i: %s', (address, prefixLength, expected) => {
    expect(isAligned(ip(address), prefixLength)).toBe(expected);
  });
});

describe('hostRange', () => {
  it.each([
    ['10.1.0.0/24', '10.1.0.1', '10.1.0.254'],
    ['10.1.0.0/16', '10.1.0.1', '10.1.255.254'],
    ['10.1.0.4/30', '10.1.0.5', '10.1.0.6'],
    // RFC 3021: no network or broadcast address
    ['10.1.0.4/31', '10.1.0.4', '10.1.0.5'],
    ['10.1.0.7/32', '10.1.0.7', '10.1.0.7'],
  ])('%s: %s to %s', (block, first, last) => {
    expect(hostRange(cidr(block))).toEqual({ first: ip(first), last: ip(last) });
  });
});

describe('isUnicastAddress', () => {
  it.each([
    ['192.168.32.20', true],
    ['10.1.0.1', true],
    ['198.51.100.12', true],
    ['1.0.0.0', true],
    ['126.255.255.255', true],
    ['128.0.0.1', true],
    ['169.253.255.255', true],
    ['169.255.0.0', true],
    ['223.255.255.255', true],
    ['0.0.0.0', false],
    ['0.1.2.3', false],
    ['127.0.0.1', false],
    ['127.255.255.254', false],
    ['169.254.0.1', false],
    ['169.254.255.255', false],
    ['224.0.0.1', false],
    ['239.255.255.250', false],
    ['240.0.0.1', false],
    ['255.255.255.255', false],
  ])('%s: %s', (address, expected) => {
    expect(isUnicastAddress(ip(address))).toBe(expected);
  });
});

describe('specialPurposeRangeOverlapping', () => {
  it.each([
    ['127.0.0.0/8', '127.0.0.0/8', 'loopback'],
    ['127.1.2.0/24', '127.0.0.0/8', 'loopback'],
    ['126.0.0.0/7', '127.0.0.0/8', 'loopback'],
    ['0.0.0.0/0', '0.0.0.0/8', '"this network"'],
    ['169.254.7.0/24', '169.254.0.0/16', 'link-local'],
    ['224.0.0.0/4', '224.0.0.0/4', 'multicast'],
    ['192.0.0.0/2', '224.0.0.0/4', 'multicast'],
    ['255.255.255.255/32', '240.0.0.0/4', 'broadcast'],
  ])('%s overlaps %s, the %s range', (text, range, purpose) => {
    const found = specialPurposeRangeOverlapping(mustParseCidr(text));
    expect(found && formatCidr(found.cidr)).toBe(range);
    expect(found?.purpose).toContain(purpose);
  });

  it.each(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '1.0.0.0/8', '126.0.0.0/8', '128.0.0.0/8', '169.253.0.0/16', '169.255.0.0/16', '208.0.0.0/4'])(
    '%s overlaps none',
    (text) => {
      expect(specialPurposeRangeOverlapping(mustParseCidr(text))).toBeUndefined();
    },
  );
});

describe('coverAddresses', () => {
  const cover = (...addresses: string[]) => coverAddresses(addresses.map(ip)).map(formatCidr);
  it.each([
    ['nothing', [], []],
    ['one address', ['198.51.100.11'], ['198.51.100.11/32']],
    ['a run not aligned at either end', ['198.51.100.11', '198.51.100.12', '198.51.100.13'], ['198.51.100.11/32', '198.51.100.12/31']],
    ['an aligned run', ['10.0.0.4', '10.0.0.5', '10.0.0.6', '10.0.0.7'], ['10.0.0.4/30']],
    ['duplicates and any order', ['10.0.0.7', '10.0.0.5', '10.0.0.4', '10.0.0.6', '10.0.0.5'], ['10.0.0.4/30']],
    ['two runs with a gap (the gap is not matched)', ['10.0.0.1', '10.0.0.2', '10.0.0.4'], ['10.0.0.1/32', '10.0.0.2/32', '10.0.0.4/32']],
    ['a run across an octet', ['10.0.0.255', '10.0.1.0'], ['10.0.0.255/32', '10.0.1.0/32']],
    ['the ends of the address space', ['0.0.0.0', '255.255.255.255'], ['0.0.0.0/32', '255.255.255.255/32']],
  ])('%s', (_why, addresses, expected) => {
    expect(cover(...addresses)).toEqual(expected);
  });

  it('takes few blocks for a long run: 1,000 consecutive addresses in 13', () => {
    const run = Array.from({ length: 1000 }, (_, i) => ip('10.0.0.10') + i);
    expect(coverAddresses(run).map(formatCidr)).toEqual([
      '10.0.0.10/31',
      '10.0.0.12/30',
      '10.0.0.16/28',
      '10.0.0.32/27',
      '10.0.0.64/26',
      '10.0.0.128/25',
      '10.0.1.0/24',
      '10.0.2.0/24',
      '10.0.3.0/25',
      '10.0.3.128/26',
      '10.0.3.192/27',
      '10.0.3.224/28',
      '10.0.3.240/31',
    ]);
  });
});

describe('properties', () => {
  const u32 = fc.integer({ min: 0, max: 0xffffffff });

  it('parse(format(n)) is n for every 32-bit address', () => {
    fc.assert(fc.property(u32, (n) => parseIPv4(formatIPv4(n)) === n));
  });

  it('format(parse(text)) is text for every canonical dotted quad', () => {
    const octet = fc.integer({ min: 0, max: 255 }).map(String);
    fc.assert(
      fc.property(fc.tuple(octet, octet, octet, octet), (parts) => {
        const text = parts.join('.');
        const value = parseIPv4(text);
        expect(value).not.toBeNull();
        expect(formatIPv4(value!)).toBe(text);
      }),
    );
  });

  it('formatCidr and parseCidr round-trip every aligned block; any other address suggests its block', () => {
    fc.assert(
      fc.property(arbCidr, u32, (block, address) => {
        expect(parseCidr(formatCidr(block))).toEqual({ ok: true, cidr: block });
        const text = `${formatIPv4(address)}/${block.prefixLength}`;
        const result = parseCidr(text);
        const network = (address & maskOf(block.prefixLength)) >>> 0;
        if (network === address) expect(result).toEqual({ ok: true, cidr: { network, prefixLength: block.prefixLength } });
        else expect(result).toMatchObject({ ok: false, reason: 'host-bits', suggestion: formatCidr({ network, prefixLength: block.prefixLength }) });
      }),
    );
  });

  it('overlaps is symmetric and equals the interval check', () => {
    fc.assert(
      fc.property(fc.oneof(arbCidr, arbSmallCidr), fc.oneof(arbCidr, arbSmallCidr), (a, b) => {
        const aEnd = a.network + 2 ** (32 - a.prefixLength) - 1;
        const bEnd = b.network + 2 ** (32 - b.prefixLength) - 1;
        const expected = Math.max(a.network, b.network) <= Math.min(aEnd, bEnd);
        expect(overlaps(a, b)).toBe(expected);
        expect(overlaps(b, a)).toBe(expected);
      }),
    );
  });

  it('overlaps equals "some address is in both" on a small space', () => {
    fc.assert(
      fc.property(arbSmallCidr, arbSmallCidr, (a, b) => {
        let shared = false;
        for (let x = a.network; x <= lastAddress(a) && !shared; x++) shared = containsAddress(b, x);
        expect(overlaps(a, b)).toBe(shared);
      }),
    );
  });

  it('containsCidr equals "every address of inner is in outer" and implies overlaps', () => {
    fc.assert(
      fc.property(fc.oneof(arbCidr, arbSmallCidr), fc.oneof(arbCidr, arbSmallCidr), (outer, inner) => {
        const expected = outer.network <= inner.network && lastAddress(inner) <= lastAddress(outer);
        expect(containsCidr(outer, inner)).toBe(expected);
        if (containsCidr(outer, inner)) expect(overlaps(outer, inner)).toBe(true);
      }),
    );
  });

  it('isAligned equals "masking changes nothing"', () => {
    fc.assert(
      fc.property(u32, fc.integer({ min: 0, max: 32 }), (address, prefixLength) => {
        expect(isAligned(address, prefixLength)).toBe((address & maskOf(prefixLength)) >>> 0 === address);
      }),
    );
  });

  it('hostRange lies inside the block and excludes network and broadcast up to /30', () => {
    fc.assert(
      fc.property(arbCidr, (block) => {
        const { first, last } = hostRange(block);
        expect(containsAddress(block, first)).toBe(true);
        expect(containsAddress(block, last)).toBe(true);
        expect(first <= last).toBe(true);
        if (block.prefixLength <= 30) {
          expect(first).toBe(block.network + 1);
          expect(last).toBe(lastAddress(block) - 1);
        } else {
          expect(first).toBe(block.network);
          expect(last).toBe(lastAddress(block));
        }
      }),
    );
  });
  it('coverAddresses holds exactly the addresses, in disjoint ascending blocks, the fewest there are', () => {
    // on a small space, so that every address can be checked and the fewest blocks found by brute force
    const base = ip('10.0.0.0');
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 200 }), (offsets) => {
        const set = new Set(offsets.map((o) => base + o));
        const blocks = coverAddresses(set);
        for (let a = base - 2; a < base + 258; a++)
          expect(
            blocks.some((b) => containsAddress(b, a)),
            formatIPv4(a),
          ).toBe(set.has(a));
        blocks.forEach((b, i) => {
          expect(isAligned(b.network, b.prefixLength)).toBe(true);
          if (i > 0) expect(blocks[i - 1]!.network + blockSize(blocks[i - 1]!.prefixLength) <= b.network).toBe(true);
        });
        // the fewest: every block is a largest aligned block inside the set, so no two blocks could merge
        const inside = (c: Cidr) => Array.from({ length: blockSize(c.prefixLength) }, (_, k) => c.network + k).every((a) => set.has(a));
        for (const b of blocks) {
          if (b.prefixLength === 0) continue;
          const parent = { network: (b.network & maskOf(b.prefixLength - 1)) >>> 0, prefixLength: b.prefixLength - 1 };
          expect(inside(parent), `${formatCidr(b)} could be ${formatCidr(parent)}`).toBe(false);
        }
      }),
    );
  });
});
