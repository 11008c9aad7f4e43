// Whether the database can be written, as the last write found it. A full disk, a read-only
// filesystem or an I/O error makes every write fail the same way: callers get one clear error
// (503 STORAGE_UNAVAILABLE, saying what to check), /healthz says so, and the log says it once,
// then at most once a minute, instead of a stack trace per request.
import { ApiError } from '../errors.ts';
import { LogThrottle } from '../log-throttle.ts';

export type StorageState = { status: 'ok' } | { status: 'unwritable'; code: string; reason: string; since: string };

interface Logger {
  error(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/** SQLite's (and the OS's) codes for "the database cannot be written", with what to check. */
const STORAGE_CODES: Array<{ pattern: RegExp; code: string; reason: string }> = [
  { pattern: /SQLITE_FULL|ENOSPC|disk is full|No space left/i, code: 'DISK_FULL', reason: 'the filesystem holding the database is full' },
  { pattern: /SQLITE_READONLY|EROFS|readonly database|read-only/i, code: 'READ_ONLY', reason: 'the database file or its filesystem is read-only' },
  { pattern: /SQLITE_IOERR|EIO\b|disk I\/O error/i, code: 'IO_ERROR', reason: 'the disk holding the database reports I/O errors' },
  {
    pattern: /SQLITE_CANTOPEN|unable to open database/i,
    code: 'CANNOT_OPEN',
    reason: 'the database file cannot be opened (deleted, moved, or its directory is gone)',
  },
];

/** The storage condition an error stands for, looking through Prisma's wrappers; null for any other error. */
export function storageCondition(error: unknown): { code: string; reason: string } | null {
  const texts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const e = current as { code?: unknown; message?: unknown; meta?: unknown; cause?: unknown };
    if (typeof e.code === 'string') texts.push(e.code);
    if (typeof e.message === 'string') texts.push(e.message);
    if (e.meta) texts.push(JSON.stringify(e.meta));
    current = e.cause;
  }
  const text = texts.join(' ');
  const found = STORAGE_CODES.find((c) => c.pattern.test(text));
  return found ? { code: found.code, reason: found.reason } : null;
}

export function isStorageUnavailable(error: unknown): boolean {
  return error instanceof ApiError && error.code === 'STORAGE_UNAVAILABLE';
}

export class StorageHealth {
  private failure: Extract<StorageState, { status: 'unwritable' }> | null = null;
  private readonly throttle = new LogThrottle();
  private log: Logger | undefined;

  /** @param location what the operator should look at: the database file, say */
  constructor(private readonly location = 'the database') {}

  logTo(log: Logger): void {
    this.log = log;
  }

  state(): StorageState {
    return this.failure ?? { status: 'ok' };
  }

  succeeded(): void {
    if (!this.failure) return;
    this.log?.info({ storage: this.failure.code, since: this.failure.since }, 'the database can be written again');
    this.failure = null;
    this.throttle.clear('storage');
  }

  /** For a storage error: records it, logs it (throttled) and returns the error to answer with. */
  failed(error: unknown): ApiError | null {
    const condition = storageCondition(error);
    if (!condition) return null;
    if (this.failure?.code !== condition.code) this.failure = { status: 'unwritable', ...condition, since: new Date().toISOString() };
    const turn = this.throttle.take('storage');
    if (turn.log) {
      this.log?.error(
        { storage: condition.code, location: this.location, suppressed: turn.suppressed, detail: (error as Error)?.message },
        `the database cannot be written: ${condition.reason}`,
      );
    }
    return new ApiError(
      'STORAGE_UNAVAILABLE',
      `the database cannot be written: ${condition.reason} (${this.location}); nothing was changed. Check the disk holding it (df, dmesg), then retry`,
    );
  }
}
