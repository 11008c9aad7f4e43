import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntervalSet, alignUp, type Range } from './interval-set.ts';

function setOf(...ranges: Array<[number, number]>): IntervalSet {
  const set = new IntervalSet();
  for (const [start, end] of ranges) set.add({ start, end });
  return set;
}

describe('IntervalSet tables', () => {
  it('alignUp rounds up to the next multiple', () => {
    expect(alignUp(0, 4)).toBe(0);
    expect(alignUp(1, 4)).toBe(4);
    expect(alignUp(4, 4)).toBe(4);
    expect(alignUp(5, 8)).toBe(8);
    expect(alignUp(0xfffffff0, 16)).toBe(0xfffffff0);
  });

  it('add keeps ranges sorted whatever the insertion order', () => {
    const set = setOf([20, 29], [0, 3], [10, 10], [4, 9]);
    expect(set.toArray()).toEqual([
      { start: 0, end: 3 },
      { start: 4, end: 9 },
      { start: 10, end: 10 },
      { start: 20, end: 29 },
    ]);
    expect(set.size).toBe(4);
  });

  it.each<[string, [number, number]]>([
    ['same range', [10, 19]],
    ['overlapping the start', [5, 10]],
    ['overlapping the end', [19, 25]],
    ['inside', [12, 13]],
    ['around', [0, 100]],
    ['touching one address', [19, 19]],
  ])('add refuses a range %s and changes nothing', (_why, [start, end]) => {
    const set = setOf([10, 19], [40, 49]);
    expect(() => set.add({ start, end })).toThrow(/overlaps/);
    expect(set.toArray()).toEqual([
      { start: 10, end: 19 },
      { start: 40, end: 49 },
    ]);
  });

  it('adjacent ranges are not overlapping', () => {
    const set = setOf([10, 19]);
    set.add({ start: 20, end: 29 });
    set.add({ start: 0, end: 9 });
    expect(set.size).toBe(3);
  });

  it('remove needs the exact bounds', () => {
    const set = setOf([10, 19], [40, 49]);
    expect(set.remove(10, 18)).toBe(false);
    expect(set.remove(11, 19)).toBe(false);
    expect(set.remove(0, 100)).toBe(false);
    expect(set.remove(20, 30)).toBe(false);
    expect(set.size).toBe(2);
    expect(set.remove(40, 49)).toBe(true);
    expect(set.remove(40, 49)).toBe(false);
    expect(set.toArray()).toEqual([{ start: 10, end: 19 }]);
    expect(set.remove(10, 19)).toBe(true);
    expect(set.size).toBe(0);
  });

  it.each<[[number, number], Range | undefined]>([
    [[0, 9], undefined],
    [[0, 10], { start: 10, end: 19 }],
    [[19, 19], { start: 10, end: 19 }],
    [[20, 39], undefined],
    [[15, 45], { start: 10, end: 19 }],
    [[25, 45], { start: 40, end: 49 }],
    [[50, 1000], undefined],
  ])('findOverlap(%j) is %j', ([start, end], expected) => {
    const set = setOf([10, 19], [40, 49]);
    expect(set.findOverlap(start, end)).toEqual(expected);
  });

  it('findOverlap on an empty set', () => {
    expect(new IntervalSet().findOverlap(0, 0xffffffff)).toBeUndefined();
  });

  it.each<[string, Array<[number, number]>, [number, number, number, number], number[]]>([
    ['empty set, aligned start', [], [0, 63, 16, 10], [0, 16, 32, 48]],
    ['empty set, unaligned start', [], [5, 63, 16, 10], [16, 32, 48]],
    ['block must end inside', [], [0, 30, 16, 10], [0]],
    ['nothing fits', [], [0, 14, 16, 10], []],
    ['skip an occupied block', [[0, 15]], [0, 63, 16, 1], [16]],
    ['a single address blocks its whole block', [[17, 17]], [0, 63, 16, 2], [0, 32]],
    ['a range spanning blocks', [[10, 40]], [0, 127, 16, 3], [48, 64, 80]],
    [
      'gaps too small are skipped',
      [
        [0, 7],
        [16, 23],
        [32, 39],
      ],
      [0, 63, 16, 5],
      [48],
    ],
    [
      'gaps that fit smaller blocks',
      [
        [0, 7],
        [16, 23],
        [32, 39],
      ],
      [0, 63, 8, 5],
      [8, 24, 40, 48, 56],
    ],
    [
      'ranges outside the window are ignored',
      [
        [0, 99],
        [300, 400],
      ],
      [128, 255, 64, 5],
      [128, 192],
    ],
    [
      'limit 1 gives the lowest',
      [
        [0, 3],
        [8, 11],
      ],
      [0, 31, 4, 1],
      [4],
    ],
    ['full', [[0, 63]], [0, 63, 1, 5], []],
  ])('firstFit: %s', (_why, ranges, [start, end, size, limit], expected) => {
    expect(setOf(...ranges).firstFit(start, end, size, limit)).toEqual(expected);
  });

  it('firstFit in a /8-sized window with 2^32 addresses in play', () => {
    const base = 0x0a000000;
    const set = setOf([base, base + 255], [base + 512, base + 767]);
    expect(set.firstFit(base, base + 0xffffff, 256, 3)).toEqual([base + 256, base + 768, base + 1024]);
    expect(setOf([0, 0xffffffff - 1]).firstFit(0, 0xffffffff, 1, 5)).toEqual([0xffffffff]);
  });

  it.each<[string, Array<[number, number]>, [number, number, number], number]>([
    ['empty', [], [0, 63, 16], 4],
    ['unaligned start', [], [5, 63, 16], 3],
    ['partial last block', [], [0, 70, 16], 4],
    ['one address blocks one block', [[17, 17]], [0, 63, 16], 3],
    ['range spanning blocks', [[10, 40]], [0, 127, 16], 5],
    [
      'ranges outside the window',
      [
        [0, 99],
        [300, 400],
      ],
      [128, 255, 64],
      2,
    ],
    ['full', [[0, 63]], [0, 63, 1], 0],
    ['size 1 counts addresses', [[3, 5]], [0, 9, 1], 7],
  ])('countFree: %s', (_why, ranges, [start, end, size], expected) => {
    expect(setOf(...ranges).countFree(start, end, size)).toBe(expected);
  });

  it.each<[Array<[number, number]>, [number, number], number]>([
    [[], [0, 100], 0],
    [[[10, 19]], [0, 100], 10],
    [[[10, 19]], [15, 100], 5],
    [
      [
        [10, 19],
        [30, 39],
      ],
      [15, 34],
      10,
    ],
    [
      [
        [10, 19],
        [30, 39],
      ],
      [20, 29],
      0,
    ],
  ])('coveredWithin(%j, %j) is %i', (ranges, [start, end], expected) => {
    expect(setOf(...ranges).coveredWithin(start, end)).toBe(expected);
  });
});

// ---- property test against a brute-force model over addresses 0..1023 ----

const SPACE = 1024;

class Model {
  readonly ranges: Range[] = [];

  overlapping(start: number, end: number): Range[] {
    return this.ranges.filter((r) => r.start <= end && start <= r.end).sort((a, b) => a.start - b.start);
  }

  isFree(start: number, end: number): boolean {
    return this.overlapping(start, end).length === 0;
  }

  firstFit(start: number, end: number, size: number, limit: number): number[] {
    const found: number[] = [];
    for (let a = 0; a + size - 1 <= end && found.length < limit; a += size) {
      if (a >= start && this.isFree(a, a + size - 1)) found.push(a);
    }
    return found;
  }

  countFree(start: number, end: number, size: number): number {
    return this.firstFit(start, end, size, Number.POSITIVE_INFINITY).length;
  }

  covered(start: number, end: number): number {
    let n = 0;
    for (let a = start; a <= end; a++) if (this.ranges.some((r) => r.start <= a && a <= r.end)) n++;
    return n;
  }
}

type Op =
  | { kind: 'add'; start: number; length: number }
  | { kind: 'addAligned'; log2: number; index: number }
  | { kind: 'removeExisting'; index: number }
  | { kind: 'removeRandom'; start: number; end: number };

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), start: fc.integer({ min: 0, max: SPACE - 1 }), length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('addAligned' as const), log2: fc.integer({ min: 0, max: 6 }), index: fc.nat() }),
  fc.record({ kind: fc.constant('removeExisting' as const), index: fc.nat() }),
  fc.record({ kind: fc.constant('removeRandom' as const), start: fc.integer({ min: 0, max: SPACE - 1 }), end: fc.integer({ min: 0, max: SPACE - 1 }) }),
);

const arbQuery = fc.record({
  a: fc.integer({ min: 0, max: SPACE - 1 }),
  b: fc.integer({ min: 0, max: SPACE - 1 }),
  log2: fc.integer({ min: 0, max: 7 }),
  limit: fc.integer({ min: 1, max: 6 }),
});

describe('IntervalSet against a brute-force model', () => {
  it('firstFit, countFree, findOverlap and coveredWithin agree after random add/remove sequences', () => {
    fc.assert(
      fc.property(fc.array(arbOp, { maxLength: 40 }), fc.array(arbQuery, { minLength: 1, maxLength: 4 }), (ops, queries) => {
        const set = new IntervalSet();
        const model = new Model();
        for (const op of ops) {
          if (op.kind === 'add' || op.kind === 'addAligned') {
            let start: number;
            let end: number;
            if (op.kind === 'add') {
              start = op.start;
              end = Math.min(SPACE - 1, op.start + op.length - 1);
            } else {
              const size = 2 ** op.log2;
              start = (op.index % (SPACE / size)) * size;
              end = start + size - 1;
            }
            if (model.isFree(start, end)) {
              set.add({ start, end });
              model.ranges.push({ start, end });
            } else {
              const before = [...set.toArray()];
              expect(() => set.add({ start, end })).toThrow();
              expect(set.toArray()).toEqual(before);
            }
          } else if (op.kind === 'removeExisting') {
            const target = model.ranges[op.index % Math.max(1, model.ranges.length)];
            if (!target) continue;
            expect(set.remove(target.start, target.end)).toBe(true);
            model.ranges.splice(model.ranges.indexOf(target), 1);
          } else {
            const exact = model.ranges.find((r) => r.start === op.start && r.end === op.end);
            expect(set.remove(op.start, op.end)).toBe(exact !== undefined);
            if (exact) model.ranges.splice(model.ranges.indexOf(exact), 1);
          }

          const sorted = [...model.ranges].sort((x, y) => x.start - y.start);
          expect(set.toArray()).toEqual(sorted);
          expect(set.size).toBe(sorted.length);
        }

        for (const q of queries) {
          const start = Math.min(q.a, q.b);
          const end = Math.max(q.a, q.b);
          const size = 2 ** q.log2;
          expect(set.firstFit(start, end, size, q.limit)).toEqual(model.firstFit(start, end, size, q.limit));
          expect(set.firstFit(start, end, size)).toEqual(model.firstFit(start, end, size, 1));
          expect(set.countFree(start, end, size)).toBe(model.countFree(start, end, size));
          // The whole space as well, the way the allocator asks (a pool is one aligned window).
          expect(set.firstFit(0, SPACE - 1, size, q.limit)).toEqual(model.firstFit(0, SPACE - 1, size, q.limit));
          expect(set.countFree(0, SPACE - 1, size)).toBe(model.countFree(0, SPACE - 1, size));
          expect(set.findOverlap(start, end)).toEqual(model.overlapping(start, end)[0]);
          expect(set.coveredWithin(start, end)).toBe(model.covered(start, end));
        }
      }),
      { numRuns: 300 },
    );
  });
});
