// Serves whichever app the controller's role calls for, on one address: the leader's full app
// (its state loaded fresh from the database for each term) or the standby's, which only refers
// clients to the leader. Every change of role closes one app and opens the other on the same
// port, one change at a time; a client caught in between is refused for a few milliseconds and
// retries, as it would after any restart.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Leadership, Role } from './leadership.ts';

/** How long a closing app may wait for its requests and streams before their connections are cut. */
export const CLOSE_GRACE_MS = 2_000;
/** Attempts to listen again on the port just released (another process may hold it briefly). */
const LISTEN_ATTEMPTS = 20;
const LISTEN_RETRY_DELAY_MS = 100;

export interface RoleServerOptions {
  host: string;
  /** 0: any free port, kept for every later role */
  port: number;
  leadership: Leadership;
  /** Loads the state (the term just began) and builds the leader's app. */
  leaderApp: (term: number) => Promise<FastifyInstance>;
  standbyApp: () => Promise<FastifyInstance>;
  log: FastifyBaseLogger;
  /**
   * Listen (as a standby) before the election starts: with port 0 the port, and so the
   * advertised URL the leader records, is only known once listening. Told by onPort.
   */
  listenFirst?: boolean;
  /** Run once the first time this controller serves as a standby: builds a leader's app it throws away, so a takeover builds warm. */
  warmUp?: () => Promise<void>;
  onPort?: (port: number) => void;
  /** what the apps' servers speak (server.ts gives them an HTTPS server Fastify cannot tell from HTTP), for the listening log line */
  scheme?: 'http' | 'https';
}

/**
 * Connections the kernel may hold for the controller to accept. Node's default, 511, overflowed
 * when a fleet's executors all connected at once: the kernel dropped the rest of the SYNs, and
 * each such client (an API call or a health check as much as an executor) waited a second or
 * three for its retransmission. The kernel caps it at net.core.somaxconn (4096 on current kernels).
 */
export const LISTEN_BACKLOG = 16_384;

export class RoleServer {
  private app: FastifyInstance | undefined;
  private serving: { role: Role; term: number | null } | undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  port: number;

  constructor(private readonly options: RoleServerOptions) {
    this.port = options.port;
  }

  get role(): Role | undefined {
    return this.serving?.role;
  }

  /** The app serving now (for tests). */
  get current(): FastifyInstance | undefined {
    return this.app;
  }

  /** Starts the election and resolves once the first app listens, as leader or standby. */
  async start(): Promise<void> {
    const { leadership } = this.options;
    if (this.options.port !== 0) this.options.onPort?.(this.options.port);
    leadership.events.on('elected', (term) => void this.enqueue(() => this.become('leader', term)));
    leadership.events.on('deposed', () => void this.enqueue(() => this.become('standby', null)));
    if (this.options.listenFirst) await this.enqueue(() => this.become('standby', null));
    leadership.start();
    await leadership.settled();
    await this.enqueue(async () => {
      if (!this.serving) await this.become(leadership.role(), leadership.term());
    });
    if (!this.app) throw new Error('the controller could not start serving');
    // A standby warms up in the background (a leader is warm already); nothing waits for it.
    const { warmUp } = this.options;
    if (this.serving?.role === 'standby' && warmUp) {
      const began = Date.now();
      warmUp().then(
        () => this.options.log.info({ tookMs: Date.now() - began }, 'warmed up for a takeover'),
        (error: unknown) => this.options.log.warn({ error: (error as Error).message }, 'warming up for a takeover failed; a takeover will take longer'),
      );
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.options.leadership.stop();
    await this.enqueue(async () => {
      if (this.app) await closeApp(this.app);
      this.app = undefined;
      this.serving = undefined;
    });
  }

  /** Resolves when every role change asked for so far is done (for tests). */
  settled(): Promise<void> {
    return this.chain;
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.chain.then(step);
    this.chain = next.catch((error: unknown) => {
      // A leader whose state cannot be loaded cannot serve; exiting lets the supervisor start
      // it again, as a standby, while another controller takes over.
      this.options.log.fatal({ err: error }, 'cannot change role; exiting');
      process.exit(1);
    });
    return this.chain;
  }

  private async become(role: Role, term: number | null): Promise<void> {
    if (this.stopped) return;
    const { leadership, log } = this.options;
    // Stale: the leadership moved on while this change waited its turn; a later one follows.
    if (role === 'leader' && (leadership.role() !== 'leader' || leadership.term() !== term)) return;
    if (this.serving?.role === role && this.serving.term === term) return;
    const started = Date.now();
    // Built and ready before the old app closes: the standby keeps answering meanwhile, and the
    // port is free only for the moment between close and listen.
    const app = role === 'leader' ? await this.options.leaderApp(term!) : await this.options.standbyApp();
    await app.ready();
    if (this.app) {
      await closeApp(this.app);
      this.app = undefined;
    }
    await this.listen(app);
    this.app = app;
    this.serving = { role, term };
    this.options.onPort?.(this.port);
    if (role === 'leader') log.info({ role, term, port: this.port, tookMs: Date.now() - started }, `serving as leader (term ${term})`);
    else log.info({ role, leader: leadership.leaderUrl(), port: this.port }, 'serving as standby: /v1 answers NOT_LEADER naming the leader');
  }

  private async listen(app: FastifyInstance): Promise<void> {
    // Every executor of the fleet connects again at once after a restart or a takeover.
    for (let attempt = 1; ; attempt++) {
      try {
        const scheme = this.options.scheme ?? 'http';
        await app.listen({
          host: this.options.host,
          port: this.port,
          backlog: LISTEN_BACKLOG,
          listenTextResolver: (address) => `Server listening at ${address.replace(/^http:/, `${scheme}:`)}`,
        });
        const address = app.server.address();
        if (typeof address === 'object' && address) this.port = address.port;
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= LISTEN_ATTEMPTS || this.port === 0) throw error;
        await new Promise((resolve) => setTimeout(resolve, LISTEN_RETRY_DELAY_MS));
      }
    }
  }
}

/**
 * Closes an app; requests and streams still open after the grace period have their connections
 * cut. A deposed leader's last flushes fail (fenced): that is logged, not fatal.
 */
async function closeApp(app: FastifyInstance): Promise<void> {
  const closing = app.close();
  const timer = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
  try {
    await closing;
  } catch (error) {
    app.log.warn({ error: (error as Error).message }, "closing the previous role's app failed; going on");
    app.server.closeAllConnections();
  } finally {
    clearTimeout(timer);
  }
}
