// The IPAM plugin's two questions to the controller, as this host (its own token): a subnet for
// a new Docker network, and the release of one. Errors say whether the controller could not be
// reached (Docker shows the message to whoever ran `docker network create`) or refused.

/** A new network should fail at once when the controller is away, not after Docker's own timeout. */
export const CONTROLLER_REQUEST_TIMEOUT_MS = 5_000;

export interface AllocatedDockerSubnet {
  id: number;
  cidr: string;
  gateway: string;
  pool: string;
}

export interface SubnetRequestBody {
  pool?: string;
  prefixLength?: number;
  cidr?: string;
}

export interface SubnetClient {
  request(body: SubnetRequestBody): Promise<AllocatedDockerSubnet>;
  /** resolves when the controller released it or no longer holds it */
  release(subnetId: number): Promise<void>;
}

/** The controller could not be reached (or did not answer in time). */
export class ControllerUnreachable extends Error {}
/** The controller answered with an error: its message says what was wrong. */
export class ControllerRefused extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
  }
}

export function httpSubnetClient(controllerUrl: string, token: string, timeoutMs = CONTROLLER_REQUEST_TIMEOUT_MS): SubnetClient {
  const base = controllerUrl.replace(/\/$/, '');
  async function call(method: 'POST' | 'DELETE', route: string, body?: unknown): Promise<{ status: number; text: string }> {
    let response: Response;
    try {
      response = await fetch(`${base}/v1/agent/subnets${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why =
        (error as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : (cause?.code ?? cause?.message ?? (error as Error).message);
      throw new ControllerUnreachable(`the crossdock controller at ${base} is unreachable (${why})`);
    }
    const text = await response.text();
    if (response.ok) return { status: response.status, text };
    let code = '';
    let message = `HTTP ${response.status}`;
    try {
      const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
      code = parsed.error?.code ?? '';
      message = parsed.error?.message ?? message;
    } catch {
      // not the controller's error body (a proxy's page): the status says enough
    }
    throw new ControllerRefused(message, response.status, code);
  }
  return {
    async request(body) {
      const { text } = await call('POST', '', body);
      const subnet = JSON.parse(text) as AllocatedDockerSubnet;
      return { id: subnet.id, cidr: subnet.cidr, gateway: subnet.gateway, pool: subnet.pool };
    },
    async release(subnetId) {
      try {
        await call('DELETE', `/${subnetId}`);
      } catch (error) {
        // Already gone (an operator released it, or an earlier attempt did): released is released.
        if (error instanceof ControllerRefused && error.status === 404) return;
        throw error;
      }
    },
  };
}
