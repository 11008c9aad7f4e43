// Reconnect delays: 0.5 s doubling to 4 s, with equal jitter (half the delay fixed, half random),
// so a controller restart does not get every executor back in the same millisecond, and no
// executor retries at once in a tight loop as full jitter's zero delays would let it. The cap is
// low on purpose (issue 12): a controller that is back, or a standby that took over, must be
// found within a few seconds; with 1 s doubling to 30 s, executors came back 11 s after a 3 s
// restart. A round of tries over every controller of the list costs one delay, not one each.
export const RECONNECT_BASE_DELAY_MS = 500;
export const RECONNECT_MAX_DELAY_MS = 4_000;

export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(RECONNECT_MAX_DELAY_MS, RECONNECT_BASE_DELAY_MS * 2 ** Math.max(0, Math.min(attempt, 30)));
  // Never a zero delay, never above the ceiling.
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export const realSleep: Sleep = (ms, signal) =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
