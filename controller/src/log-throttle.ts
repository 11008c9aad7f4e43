// A condition that repeats (a full disk, one host flooding) is logged once, then at most once
// per interval with the count of what was left out: a log that scrolls one line per request
// hides everything else and fills the disk that was already full.
export const REPEAT_LOG_INTERVAL_MS = 60_000;

export class LogThrottle {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs = REPEAT_LOG_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether to log `key` now; when so, how many times it was left out since the last line. */
  take(key: string): { log: true; suppressed: number } | { log: false } {
    const now = this.now();
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return { log: false };
    }
    this.last.set(key, { at: now, suppressed: 0 });
    return { log: true, suppressed: entry?.suppressed ?? 0 };
  }

  /** The condition is over: the next occurrence is logged at once. */
  clear(key: string): void {
    this.last.delete(key);
  }
}
