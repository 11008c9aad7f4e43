// A sorted set of disjoint, inclusive address ranges, with lowest-address aligned first fit.
// Pure: the allocator's in-memory index, rebuilt from the database at start-up.

export interface Range {
  start: number;
  end: number;
}

export class IntervalSet {
  // Sorted by start; ranges never overlap.
  private readonly ranges: Range[] = [];
  /**
   * Per search (its start and block size): an address such that no free aligned block of
   * that size lies between the start and it. First fit resumes there instead of at the
   * bottom, so a pool that is 90% full costs no more to allocate from than an empty one.
   * Adding a range keeps every hint true; removing one lowers the hints above it.
   */
  private readonly hints = new Map<string, { start: number; size: number; upTo: number }>();

  get size(): number {
    return this.ranges.length;
  }

  /** Index of the first range whose end >= address. */
  private lowerBound(address: number): number {
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ranges[mid]!.end < address) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The first stored range overlapping [start, end], if any. */
  findOverlap(start: number, end: number): Range | undefined {
    const candidate = this.ranges[this.lowerBound(start)];
    return candidate && candidate.start <= end ? candidate : undefined;
  }

  /** Adds a range; throws if it overlaps one already present (a bug upstream, never input). */
  add(range: Range): void {
    const index = this.lowerBound(range.start);
    const next = this.ranges[index];
    if (next && next.start <= range.end) {
      throw new Error(`range ${range.start}-${range.end} overlaps ${next.start}-${next.end}`);
    }
    this.ranges.splice(index, 0, range);
  }

  /** Removes the range with exactly these bounds; returns whether it was present. */
  remove(start: number, end: number): boolean {
    const index = this.lowerBound(start);
    const found = this.ranges[index];
    if (!found || found.start !== start || found.end !== end) return false;
    this.ranges.splice(index, 1);
    for (const hint of this.hints.values()) {
      if (hint.upTo > start) hint.upTo = Math.max(hint.start, Math.floor(start / hint.size) * hint.size);
    }
    return true;
  }

  /** Total addresses covered by stored ranges that lie within [start, end]. */
  coveredWithin(start: number, end: number): number {
    let total = 0;
    for (let i = this.lowerBound(start); i < this.ranges.length; i++) {
      const r = this.ranges[i]!;
      if (r.start > end) break;
      total += Math.min(r.end, end) - Math.max(r.start, start) + 1;
    }
    return total;
  }

  /**
   * Lowest aligned block of `size` addresses (a power of two) inside [start, end] that
   * overlaps no stored range. Up to `limit` such blocks, in address order.
   */
  firstFit(start: number, end: number, size: number, limit = 1): number[] {
    const found: number[] = [];
    const key = `${start}/${size}`;
    let hint = this.hints.get(key);
    if (!hint) this.hints.set(key, (hint = { start, size, upTo: start }));
    let cursor = alignUp(hint.upTo, size);
    let i = this.lowerBound(cursor);
    while (found.length < limit && cursor + size - 1 <= end) {
      const blocker = this.ranges[i];
      if (!blocker || blocker.start > cursor + size - 1) {
        found.push(cursor);
        cursor += size;
        continue;
      }
      // The candidate collides with `blocker`: jump past it.
      cursor = alignUp(blocker.end + 1, size);
      i++;
      while (this.ranges[i] && this.ranges[i]!.end < cursor) i++;
    }
    // Nothing between the start and the first block found (or where the search gave up) is free.
    hint.upTo = found[0] ?? cursor;
    return found;
  }

  /** Number of aligned blocks of `size` inside [start, end] that overlap no stored range. */
  countFree(start: number, end: number, size: number): number {
    let free = 0;
    let cursor = alignUp(start, size);
    for (let i = this.lowerBound(cursor); cursor + size - 1 <= end; ) {
      const blocker = this.ranges[i];
      const limit = blocker && blocker.start <= end ? blocker.start : end + 1;
      // Whole aligned blocks between cursor and the next blocker.
      if (limit > cursor) free += Math.floor((limit - cursor) / size);
      if (!blocker || blocker.start > end) break;
      cursor = alignUp(blocker.end + 1, size);
      i++;
      while (this.ranges[i] && this.ranges[i]!.end < cursor) i++;
    }
    return free;
  }

  toArray(): readonly Range[] {
    return this.ranges;
  }
}

export function alignUp(address: number, size: number): number {
  return Math.ceil(address / size) * size;
}
