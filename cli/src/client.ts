// The REST client: one bearer token, a list of controllers, and the leader found the way the
// executor finds it. A standby answers /v1 with 503 NOT_LEADER naming the leader (followed at
// once); a controller that cannot be reached, or a standby that knows no leader, passes the
// request to the next URL of the list.
import { describeTrustFailure, trustedFetch } from '@crossdock/shared/trust';
import { CliError } from './errors.ts';
import type { Connection } from './connection.ts';

/** Every request gives up after this long (a plan waits up to 5 s for the host's snapshot). */
const REQUEST_TIMEOUT_MS = 30_000;
/** Leaders followed for one request before giving up: a loop of standbys naming each other. */
const MAX_LEADER_HOPS = 5;
/** Errors that mean the request never reached the controller: safe to send elsewhere. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

export interface ApiResponse {
  status: number;
  /** the body exactly as the controller sent it ('' for 204) */
  text: string;
  body: unknown;
}

export class ApiClient {
  /** the controller that answered last: tried first next time */
  leader: string;

  private readonly fetchImpl: typeof fetch;

  constructor(
    private readonly connection: Connection,
    fetchImpl?: typeof fetch,
  ) {
    this.leader = connection.controllers[0]!;
    // Node's fetch takes no CA of our own: requests go through the controller trust instead.
    this.fetchImpl = fetchImpl ?? (connection.trust ? trustedFetch(connection.trust) : fetch);
  }

  get tokenSource(): string {
    return this.connection.tokenSource;
  }

  /** Sends a request to the leader; a non-2xx answer becomes a CliError with the API's code and message. */
  async call(method: string, route: string, body?: unknown): Promise<ApiResponse> {
    if (route.startsWith('/v1/') && !this.connection.token) {
      throw new CliError(
        'NO_TOKEN',
        `no admin token: pass --token, set CROSSDOCK_ADMIN_TOKEN, or run from the checkout whose controller saved data/admin-token (looked for: ${this.connection.tokenSource})`,
      );
    }
    const response = await this.send(method, route, body);
    if (response.status >= 200 && response.status < 300) return response;
    const error = (response.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    if (error && typeof error.code === 'string' && typeof error.message === 'string') {
      const hint = error.code === 'UNAUTHORIZED' ? ` (the token came from ${this.connection.tokenSource})` : '';
      throw new CliError(error.code, `${error.message}${hint}`);
    }
    throw new CliError('BAD_RESPONSE', `${method} ${this.leader}${route} answered ${response.status} without a crossdock error body`);
  }

  async send(method: string, route: string, body?: unknown): Promise<ApiResponse> {
    const order = [this.leader, ...this.connection.controllers.filter((u) => u !== this.leader)];
    const failures: string[] = [];
    let hops = 0;
    for (let i = 0; i < order.length; i++) {
      const base = order[i]!;
      let response: Response;
      try {
        response = await this.fetchImpl(`${base}${route}`, {
          method,
          headers: {
            ...(this.connection.token ? { authorization: `Bearer ${this.connection.token}` } : {}),
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
      } catch (error) {
        const code = errorCode(error);
        const untrusted = this.connection.trust && describeTrustFailure((error as { cause?: unknown }).cause ?? error, base, this.connection.trust);
        if (untrusted) throw new CliError('UNTRUSTED_CONTROLLER', `${untrusted} (trusting ${this.connection.trustSource ?? "the system's CAs"})`);
        failures.push(`${base}: ${describeFetchError(error)}`);
        // A request that may have reached a controller is not sent again elsewhere, unless it only reads.
        if (method !== 'GET' && !NOT_CONNECTED.has(code)) break;
        continue;
      }
      const text = await response.text();
      const parsed = parseJson(text);
      const error = (parsed as { error?: { code?: string; leader?: unknown } } | undefined)?.error;
      if (response.status === 503 && error?.code === 'NOT_LEADER') {
        const leader = typeof error.leader === 'string' ? error.leader.replace(/\/+$/, '') : null;
        failures.push(`${base}: standby${leader ? ` (leader ${leader})` : ', no leader known'}`);
        if (leader && hops < MAX_LEADER_HOPS && !order.slice(0, i + 1).includes(leader)) {
          hops++;
          order.splice(i + 1, 0, leader); // follow at once
        }
        continue;
      }
      this.leader = base;
      return { status: response.status, text, body: parsed };
    }
    throw new CliError(
      'CONTROLLER_UNREACHABLE',
      `no controller answered as leader: ${failures.join('; ')}; check that one runs there, or name it with --controller or CROSSDOCK_CONTROLLER`,
    );
  }
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorCode(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  return (error as { name?: string }).name === 'TimeoutError' ? 'TIMEOUT' : '';
}

function describeFetchError(error: unknown): string {
  if ((error as { name?: string }).name === 'TimeoutError') return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.message ?? cause?.code ?? (error as Error).message;
}
