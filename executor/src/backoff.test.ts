// Reconnect delays: 0.5 s doubling to 4 s, half fixed and half random.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RECONNECT_BASE_DELAY_MS, RECONNECT_MAX_DELAY_MS, backoffDelay, realSleep } from './backoff.ts';

const CEILINGS = [500, 1_000, 2_000, 4_000, 4_000, 4_000, 4_000, 4_000, 4_000, 4_000, 4_000];

describe('backoffDelay', () => {
  it('starts at 0.5 s and stops at 4 s', () => {
    expect([RECONNECT_BASE_DELAY_MS, RECONNECT_MAX_DELAY_MS]).toStrictEqual([500, 4_000]);
  });

  it('finds a controller that is back within a few seconds: no wait over 4 s, and the first four tries within 7.5 s', () => {
    // The restart the issue measured: killed, back 3 s later. The worst case (every delay at its
    // ceiling) retries at 0.5, 1.5, 3.5 s: the controller is found at 3.5 s, not 11 s.
    const worst = Array.from({ length: 4 }, (_, attempt) => backoffDelay(attempt, () => 1));
    expect(worst).toStrictEqual([500, 1_000, 2_000, 4_000]);
    expect(worst.reduce((a, b) => a + b)).toBe(7_500);
    for (let attempt = 0; attempt < 100; attempt++) expect(backoffDelay(attempt)).toBeLessThanOrEqual(4_000);
  });

  it('keeps the jitter: delays of one attempt spread over half its ceiling', () => {
    const delays = new Set(Array.from({ length: 200 }, () => backoffDelay(3)));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(2_000);
    expect(Math.max(...delays)).toBeLessThanOrEqual(4_000);
    expect(delays.size).toBeGreaterThan(50);
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

  it('never grows past the cap however many attempts, nor below 0.25 s for odd input', () => {
    expect(backoffDelay(10_000, () => 1)).toBe(4_000);
    expect(backoffDelay(Number.MAX_SAFE_INTEGER, () => 1)).toBe(4_000);
    expect(backoffDelay(-3, () => 0)).toBe(250);
    expect(backoffDelay(-3, () => 1)).toBe(500);
  });

  it('uses Math.random by default, within the bounds', () => {
    for (let i = 0; i < 50; i++) {
      const delay = backoffDelay(2);
      expect(delay).toBeGreaterThanOrEqual(1_000);
      expect(delay).toBeLessThanOrEqual(2_000);
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
