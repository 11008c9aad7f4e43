// Reconnect delays: 1 s doubling to 30 s, half fixed and half random.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RECONNECT_BASE_DELAY_MS, RECONNECT_MAX_DELAY_MS, backoffDelay, realSleep } from './backoff.ts';

const CEILINGS = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000, 30_000, 30_000];

describe('backoffDelay', () => {
  it('starts at 1 s and stops at 30 s', () => {
    expect([RECONNECT_BASE_DELAY_MS, RECONNECT_MAX_DELAY_MS]).toStrictEqual([1_000, 30_000]);
  });

  it.each(CEILINGS.map((ceiling, attempt) => [attempt, ceiling]))('attempt %i: ceiling %i ms, delays in [ceiling/2, ceiling]', (attempt, ceiling) => {
    expect(backoffDelay(attempt, () => 0)).toBe(ceiling / 2);
    expect(backoffDelay(attempt, () => 1)).toBe(ceiling);
    expect(backoffDelay(attempt, () => 0.5)).toBe((ceiling * 3) / 4);
    for (const r of [0.001, 0.25, 0.999]) {
      const delay = backoffDelay(attempt, () => r);
      expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
      expect(delay).toBeLessThanOrEqual(ceiling);
    }
  });

  it('never grows past the cap however many attempts, nor below 1 s for odd input', () => {
    expect(backoffDelay(10_000, () => 1)).toBe(30_000);
    expect(backoffDelay(-3, () => 0)).toBe(500);
    expect(backoffDelay(-3, () => 1)).toBe(1_000);
  });

  it('uses Math.random by default, within the bounds', () => {
    for (let i = 0; i < 50; i++) {
      const delay = backoffDelay(2);
      expect(delay).toBeGreaterThanOrEqual(2_000);
      expect(delay).toBeLessThanOrEqual(4_000);
    }
  });
});

describe('realSleep', () => {
  afterEach(() => vi.useRealTimers());

  it('resolves after the delay', async () => {
    vi.useFakeTimers();
    let done = false;
    const sleeping = realSleep(1_000).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await sleeping;
    expect(done).toBe(true);
  });

  it('resolves at once on abort, and at once if already aborted', async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    let done = false;
    const sleeping = realSleep(30_000, controller.signal).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(10);
    expect(done).toBe(false);
    controller.abort();
    await sleeping;
    expect(done).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    await realSleep(30_000, controller.signal); // would hang under fake timers if it waited
  });
});
