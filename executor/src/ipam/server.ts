// The IPAM plugin's unix socket, where Docker finds plugins (/run/docker/plugins/<name>.sock):
// HTTP POST /<Method> with a JSON body, answered in Docker's plugin content type. Only this
// module touches the socket; plugin.ts answers the calls.
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../log.ts';
import { PLUGIN_CONTENT_TYPE, type IpamPlugin } from './plugin.ts';

/** Docker sends a few hundred bytes; anything near this is not Docker. */
const MAX_REQUEST_BYTES = 64 * 1024;
const SOCKET_PROBE_TIMEOUT_MS = 1_000;

export class SocketInUse extends Error {}

/** Whether something answers on the socket: another executor serving it, which is left alone. */
function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const connection = net.connect(socket);
    const done = (value: boolean) => {
      connection.destroy();
      resolve(value);
    };
    connection.setTimeout(SOCKET_PROBE_TIMEOUT_MS, () => done(false));
    connection.once('connect', () => done(true));
    connection.once('error', () => done(false));
  });
}

export interface PluginServer {
  socket: string;
  close(): Promise<void>;
}

export async function servePlugin(plugin: IpamPlugin, socket: string, log: Logger): Promise<PluginServer> {
  await mkdir(path.dirname(socket), { recursive: true, mode: 0o755 });
  const existing = await lstat(socket).catch(() => null);
  if (existing) {
    if (!existing.isSocket()) throw new SocketInUse(`${socket} exists and is not a socket; remove it or choose another --ipam-socket`);
    if (await answers(socket)) throw new SocketInUse(`another process serves ${socket} (a second executor?); stop it or choose another --ipam-socket`);
    await unlink(socket); // left by an executor that was killed
  }
  const server = http.createServer((request, response) => {
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': PLUGIN_CONTENT_TYPE });
      response.end(JSON.stringify(body));
    };
    if (request.method !== 'POST') {
      reply(405, { Err: `plugin calls are POST /<Method>, not ${request.method}` });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        reply(413, { Err: `a plugin request is at most ${MAX_REQUEST_BYTES} bytes` });
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      if (size > MAX_REQUEST_BYTES) return;
      const text = Buffer.concat(chunks).toString('utf8').trim();
      let body: unknown = {};
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          reply(500, { Err: 'the request body is not JSON' });
          return;
        }
      }
      const method = (request.url ?? '/').replace(/^\//, '').split('?')[0]!;
      plugin.handle(method, body).then(
        (answer) => reply(answer.status, answer.body),
        (error: unknown) => reply(500, { Err: `crossdock IPAM: ${(error as Error).message}` }),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Docker runs as root; nobody else has anything to ask.
  await chmod(socket, 0o660);
  log.info({ socket }, 'serving the Docker IPAM plugin "crossdock"');
  return {
    socket,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(() => unlink(socket).catch(() => {})),
  };
}
