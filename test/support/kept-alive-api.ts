// The admin API over one HTTPS connection kept open: during a reconnect storm a new connection
// waits behind the storm's own TLS handshakes (seconds at 10,000 executors, past fetch's 10 s
// connect timeout), and the suites' and benchmarks' own calls must not.
import https from 'node:https';

/** The admin API over at most `connections` connections, each kept open once made. */
export function keptAliveApi(base: string, token: string, connections = 1) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: connections });
  const call = (method: string, route: string, body?: unknown, retried = false): Promise<{ status: number; body: any }> =>
    new Promise<{ status: number; body: any }>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const request = https.request(
        new URL(route, base),
        { method, agent, headers: { authorization: `Bearer ${token}`, ...(payload ? { 'content-type': 'application/json' } : {}) } },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
        },
      );
      request.on('error', (error: NodeJS.ErrnoException) => {
        // A kept-alive connection the server closed as this request went out on it: the request
        // never reached the server, so it is sent again once, on a new connection (Node's advice).
        if (error.code === 'ECONNRESET' && request.reusedSocket && !retried) call(method, route, body, true).then(resolve, reject);
        else reject(error);
      });
      request.end(payload);
    });
  return { call, close: () => agent.destroy() };
}
