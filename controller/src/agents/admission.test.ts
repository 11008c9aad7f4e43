import { afterEach, describe, expect, it, vi } from 'vitest';
import { Admission, HELLO_DEADLINE_MS } from './admission.ts';

describe('Admission', () => {
  afterEach(() => vi.useRealTimers());

  it('admits up to its limit, then refuses until a place is released; a release counts once', () => {
    const admission = new Admission(2);
    const a = admission.admit();
    const b = admission.admit();
    expect(a.admitted && b.admitted).toBe(true);
    expect(admission.admit()).toMatchObject({ admitted: false, syncing: 2 });
    if (!a.admitted) throw new Error('unreachable');
    a.ticket.release();
    a.ticket.release();
    expect(admission.inProgress).toBe(1);
    expect(admission.admit().admitted).toBe(true);
    expect(admission.admit().admitted).toBe(false);
    expect(admission.refused).toBe(2);
  });

  it('0 means no limit', () => {
    const admission = new Admission(0);
    for (let i = 0; i < 1_000; i++) expect(admission.admit().admitted).toBe(true);
  });

  it('gives each refused executor its own turn, spread at the rate places free up (assumed until one is measured)', () => {
    let now = 0;
    const admission = new Admission(100, () => now);
    const tickets = Array.from({ length: 100 }, () => {
      const outcome = admission.admit();
      if (!outcome.admitted) throw new Error('expected a place');
      return outcome.ticket;
    });
    // Nothing finished yet: 100 places, assumed to free up once a second each (100/s), so the
    // first 100 refused come back within a second, the next 100 in the second after.
    const waits = Array.from({ length: 250 }, () => admission.admit()).map((o) => (o.admitted ? -1 : o.retryAfterS));
    expect(waits.slice(0, 100).every((s) => s === 1)).toBe(true);
    expect(waits.slice(100, 200).every((s) => s === 2)).toBe(true);
    expect(waits.slice(200)).toEqual(Array(50).fill(3));
    // Later: 50 finished within the last 5 s (10/s); turns are 100 ms apart from what is promised.
    now = 30_000;
    for (const t of tickets.slice(0, 50)) {
      now += 100;
      t.release();
    }
    for (let i = 0; i < 50; i++) expect(admission.admit().admitted).toBe(true);
    const later = Array.from({ length: 30 }, () => admission.admit()).map((o) => (o.admitted ? -1 : o.retryAfterS));
    expect(later).toEqual([...Array(10).fill(1), ...Array(10).fill(2), ...Array(10).fill(3)]);
  });

  it('never asks for less than a second or more than 15', () => {
    const now = 0;
    const fast = new Admission(1, () => now);
    for (let i = 0; i < 1_000; i++) {
      const outcome = fast.admit();
      if (outcome.admitted) outcome.ticket.release();
    }
    fast.admit();
    expect(fast.admit()).toMatchObject({ admitted: false, retryAfterS: 1 });
    const slow = new Admission(1, () => now);
    slow.admit();
    const waits = Array.from({ length: 100 }, () => slow.admit()).map((o) => (o.admitted ? -1 : o.retryAfterS));
    expect(Math.max(...waits)).toBe(15);
    expect(waits.slice(14)).toEqual(Array(86).fill(15));
  });

  it('a cancelled place is free again without counting as a finished sync', () => {
    const now = 0;
    const admission = new Admission(1, () => now);
    const first = admission.admit();
    if (!first.admitted) throw new Error('expected a place');
    for (let i = 0; i < 50; i++) {
      first.ticket.cancel();
      const again = admission.admit();
      if (!again.admitted) throw new Error('expected the cancelled place');
      again.ticket.cancel();
    }
    const held = admission.admit();
    expect(held.admitted).toBe(true);
    // No sync finished: turns go at the assumed rate (1/s for one place), not at 100 "syncs" in no time.
    const waits = Array.from({ length: 3 }, () => admission.admit()).map((o) => (o.admitted ? -1 : o.retryAfterS));
    expect(waits).toEqual([1, 2, 3]);
  });

  it('gives back the place of a connection that never says hello', () => {
    vi.useFakeTimers();
    const admission = new Admission(1);
    expect(admission.admit().admitted).toBe(true);
    expect(admission.admit().admitted).toBe(false);
    vi.advanceTimersByTime(HELLO_DEADLINE_MS);
    expect(admission.inProgress).toBe(0);
    expect(admission.admit().admitted).toBe(true);
  });

  it("keeps a lane as large as the first for newcomers, whose syncs neither take the others' places nor set their turns", () => {
    const now = 0;
    const admission = new Admission(2, () => now);
    const regular = [admission.admit(), admission.admit()];
    expect(admission.admit().admitted).toBe(false);
    const newcomers = [admission.admitNewcomer(), admission.admitNewcomer()];
    expect(newcomers.every((o) => o.admitted)).toBe(true);
    expect(admission.inProgress).toBe(4);
    expect(admission.admitNewcomer()).toMatchObject({ admitted: false, retryAfterS: 1, syncing: 4 });
    for (const o of newcomers) if (o.admitted) o.ticket.release();
    // Two newcomers synced: the regular lane is still full, and its turns still go at the assumed 2/s.
    expect(admission.inProgress).toBe(2);
    const waits = Array.from({ length: 4 }, () => admission.admit()).map((o) => (o.admitted ? -1 : o.retryAfterS));
    expect(waits).toEqual([1, 2, 2, 3]);
    expect(admission.admitNewcomer().admitted).toBe(true);
    for (const o of regular) if (o.admitted) o.ticket.release();
    expect(admission.admit().admitted).toBe(true);
  });
});
