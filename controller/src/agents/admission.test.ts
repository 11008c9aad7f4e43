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

  it('asks to come back when the syncs ahead should be done at the rate they finish, within 1 to 15 s', () => {
    let now = 0;
    const admission = new Admission(100, () => now);
    const tickets = Array.from({ length: 100 }, () => {
      const outcome = admission.admit();
      if (!outcome.admitted) throw new Error('expected a place');
      return outcome.ticket;
    });
    // Nothing finished yet: no rate to go by, a middling wait.
    expect(admission.admit()).toMatchObject({ admitted: false, retryAfterS: 5 });
    // 50 finished within the last 5 s (10/s); with 50 more admitted, 100 syncing: 10 s.
    for (const t of tickets.slice(0, 50)) {
      now += 100;
      t.release();
    }
    for (let i = 0; i < 50; i++) expect(admission.admit().admitted).toBe(true);
    expect(admission.admit()).toMatchObject({ admitted: false, retryAfterS: 10 });
    // None finished for a minute: no rate to go by again.
    now += 60_000;
    expect(admission.admit()).toMatchObject({ admitted: false, retryAfterS: 5 });
  });

  it('never asks for less than a second or more than 15', () => {
    let now = 0;
    const fast = new Admission(1, () => now);
    for (let i = 0; i < 1_000; i++) {
      const outcome = fast.admit();
      if (outcome.admitted) outcome.ticket.release();
    }
    fast.admit();
    expect(fast.admit()).toMatchObject({ admitted: false, retryAfterS: 1 });
    const slow = new Admission(1_000, () => now);
    const first = slow.admit();
    if (first.admitted) first.ticket.release();
    for (let i = 0; i < 1_000; i++) slow.admit();
    now += 1_000;
    expect(slow.admit()).toMatchObject({ admitted: false, retryAfterS: 15 });
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
});
