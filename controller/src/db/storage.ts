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

const CHECK_DISK = 'Check the disk holding it (df, dmesg)';
const CHECK_SERVER = "Check the PostgreSQL server and the network to it (pg_isready, the server's log)";

/**
 * SQLite's, PostgreSQL's (SQLSTATE and the pg adapter's kinds) and the OS's codes for "the
 * database cannot be written", with what to check.
 */
const STORAGE_CODES: Array<{ pattern: RegExp; code: string; reason: string; check: string }> = [
  { pattern: /SQLITE_FULL|ENOSPC|disk is full|No space left/i, code: 'DISK_FULL', reason: 'the filesystem holding the database is full', check: CHECK_DISK },
  {
    pattern: /"53100"|could not extend file/i,
    code: 'DISK_FULL',
    reason: "the PostgreSQL server's disk is full",
    check: "Free space on the PostgreSQL server's data directory",
  },
  {
    pattern: /SQLITE_READONLY|EROFS|readonly database|read-only file ?system/i,
    code: 'READ_ONLY',
    reason: 'the database file or its filesystem is read-only',
    check: CHECK_DISK,
  },
  {
    pattern: /"25006"|read-only transaction/i,
    code: 'READ_ONLY',
    reason: 'the PostgreSQL server accepts no writes (a hot standby, or default_transaction_read_only)',
    check: 'Point CROSSDOCK_DB at the primary',
  },
  { pattern: /SQLITE_IOERR|EIO\b|disk I\/O error|"58030"/i, code: 'IO_ERROR', reason: 'the disk holding the database reports I/O errors', check: CHECK_DISK },
  {
    pattern: /SQLITE_CANTOPEN|unable to open database/i,
    code: 'CANNOT_OPEN',
    reason: 'the database file cannot be opened (deleted, moved, or its directory is gone)',
    check: CHECK_DISK,
  },
  {
    pattern:
      /DatabaseNotReachable|ConnectionClosed|SocketTimeout|ECONNREFUSED|ECONNRESET|Connection terminated|timeout exceeded when trying to connect|"57P0[123]"|"08\d{3}"|P1001|P1017/,
    code: 'UNREACHABLE',
    reason: 'the PostgreSQL server cannot be reached (stopped, restarting, or the network to it is down)',
    check: CHECK_SERVER,
  },
  {
    pattern: /TooManyConnections|"53300"/,
    code: 'TOO_MANY_CONNECTIONS',
    reason: 'the PostgreSQL server refuses more connections (max_connections)',
    check: "Lower CROSSDOCK_DB_POOL_SIZE or raise the server's max_connections",
  },
];

/** The storage condition an error stands for, looking through Prisma's wrappers; null for any other error. */
export function storageCondition(error: unknown): { code: string; reason: string; check: string } | null {
  const texts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const e = current as { code?: unknown; message?: unknown; meta?: unknown; cause?: unknown };
    if (typeof e.code === 'string') texts.push(JSON.stringify(e.code)); // quoted: SQLSTATEs match as "53100"
    if (typeof e.message === 'string') texts.push(e.message);
    if (e.meta) texts.push(JSON.stringify(e.meta));
    current = e.cause;
  }
  const text = texts.join(' ');
  const found = STORAGE_CODES.find((c) => c.pattern.test(text));
  return found ? { code: found.code, reason: found.reason, check: found.check } : null;
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
    if (this.failure?.code !== condition.code)
      this.failure = { status: 'unwritable', code: condition.code, reason: condition.reason, since: new Date().toISOString() };
    const turn = this.throttle.take('storage');
    if (turn.log) {
      this.log?.error(
        { storage: condition.code, location: this.location, suppressed: turn.suppressed, detail: (error as Error)?.message },
        `the database cannot be written: ${condition.reason}`,
      );
    }
    return new ApiError(
      'STORAGE_UNAVAILABLE',
      `the database cannot be written: ${condition.reason} (${this.location}); nothing was changed. ${condition.check}, then retry`,
    );
  }
}
