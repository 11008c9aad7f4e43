// The REST API with the admin token. Every error comes back as ApiError with the API's own
// code and message, so forms can show the message next to the field it concerns.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const TOKEN_KEY = 'crossdock.adminToken';

export class Api {
  /** called once when the controller refuses the token (it changed, or the session is stale) */
  onUnauthorized: ((error: ApiError) => void) | undefined;

  constructor(readonly token: string) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (error) {
      throw new ApiError(0, 'NETWORK', `the controller did not answer (${(error as Error).message}); check that it is running`);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ApiError(response.status, 'BAD_RESPONSE', `the controller answered ${response.status} with something that is not JSON`);
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      const failure = new ApiError(response.status, error?.code ?? `HTTP_${response.status}`, error?.message ?? `the controller answered ${response.status}`);
      if (response.status === 401) this.onUnauthorized?.(failure);
      throw failure;
    }
    return parsed as T;
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }
}
