// The controllers an executor may attach to, and which one it tries next. Several controllers
// share one database and one of them leads; the others answer 503 NOT_LEADER naming it. The
// executor goes round its list, follows a named leader at once (a redirect, not a failure),
// and only sleeps (with backoff) once a whole round found no leader.

export class ControllerListError extends Error {}

/** Parses "http://a:7800,http://b:7800" into distinct URLs without a trailing slash. */
export function parseControllerList(text: string): string[] {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length === 0) {
    throw new ControllerListError('no controller given; pass --controller http://<controller>:7800 (several, comma-separated) or set CROSSDOCK_CONTROLLER');
  }
  const urls: string[] = [];
  for (const raw of parts) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ControllerListError(`controller "${raw}" is not a URL; use http://<controller address>:7800 (several, comma-separated)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ControllerListError(`controller URL must start with http:// or https://, not ${url.protocol} (in "${raw}")`);
    }
    if (url.search || url.hash || url.username || url.password) {
      throw new ControllerListError(
        `controller "${raw}" has a query, fragment or credentials; give only scheme, host, port and path, such as http://10.0.0.5:7800`,
      );
    }
    const normalized = normalizeControllerUrl(url.toString());
    if (!urls.includes(normalized)) urls.push(normalized);
  }
  return urls;
}

export function normalizeControllerUrl(url: string): string {
  return url.replace(/\/+$/, '');
}

/** Redirects followed within one round: standbys that name each other (a stale record) cannot loop. */
export const MAX_LEADER_REDIRECTS_PER_ROUND = 4;

/**
 * Which controller to try next. A round is one try of each configured URL; a leader named by
 * a standby is tried at once, ahead of the rest of the round, unless it already failed in
 * this round. `roundFailed()` says when the whole list was tried without a session: only then
 * does the caller back off.
 */
export class ControllerRotation {
  private readonly urls: readonly string[];
  /** where the next round's walk over the configured URLs starts */
  private cursor = 0;
  /** a leader named by a standby, tried next */
  private redirect: string | undefined;
  private redirects = 0;
  /** URLs that failed or turned out to be standbys in this round */
  private readonly failedThisRound = new Set<string>();
  /** the URL of the last session that opened: a lost session looks there first */
  private last: string | undefined;

  constructor(urls: readonly string[]) {
    if (urls.length === 0) throw new ControllerListError('at least one controller URL is needed');
    this.urls = [...new Set(urls.map(normalizeControllerUrl))];
  }

  get all(): readonly string[] {
    return this.urls;
  }

  /** The URL to try now. */
  next(): string {
    if (this.redirect !== undefined) return this.redirect;
    if (this.last !== undefined && !this.failedThisRound.has(this.last)) return this.last;
    for (let i = 0; i < this.urls.length; i++) {
      const url = this.urls[(this.cursor + i) % this.urls.length]!;
      if (!this.failedThisRound.has(url)) return url;
    }
    return this.urls[this.cursor]!;
  }

  /** A session with `url` opened: it leads, and a later loss starts looking there. */
  attached(url: string): void {
    this.last = url;
    this.resetRound();
  }

  /** `url` could not be reached or refused the session. */
  failed(url: string): void {
    this.failedThisRound.add(url);
    if (this.redirect === url) this.redirect = undefined;
    if (this.last === url) this.last = undefined;
    const index = this.urls.indexOf(url);
    if (index >= 0) this.cursor = (index + 1) % this.urls.length;
  }

  /**
   * `url` is a standby naming `leader` (undefined: it knows none). Returns true when the leader
   * is tried next; false when the redirect is refused (no leader named, the leader already
   * failed in this round, or too many redirects), and the round goes on down the list.
   */
  notLeader(url: string, leader: string | undefined): boolean {
    this.failed(url);
    const target = leader === undefined || leader === '' ? undefined : normalizeControllerUrl(leader);
    if (target === undefined || this.failedThisRound.has(target) || this.redirects >= MAX_LEADER_REDIRECTS_PER_ROUND) return false;
    this.redirects++;
    this.redirect = target;
    return true;
  }

  /** Whether every configured URL failed in this round and no redirect is pending: time to back off. */
  roundFailed(): boolean {
    return this.redirect === undefined && this.urls.every((u) => this.failedThisRound.has(u));
  }

  /** Starts a new round (after the backoff sleep, or after a session). */
  resetRound(): void {
    this.failedThisRound.clear();
    this.redirect = undefined;
    this.redirects = 0;
  }
}
