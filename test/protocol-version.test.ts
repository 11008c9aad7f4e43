// Protocol versions, both ways. The real controller process refuses an executor whose hello is
// in another protocol version (WebSocket and HTTP polling), logs a warning naming the versions,
// and shows each executor's version from its hello in GET /v1/hosts. The real executor process
// refuses a controller that greets it in another version: a small server here plays a controller
// of protocol 2 (no such controller exists yet), and sends a job right after its welcome; the job
// is invalid on purpose, so that even a broken refusal could not change this machine.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { PROTOCOL_VERSION, emptyObservedState, observedDigest } from '@crossdock/shared';
import { REPO_ROOT, api, startController, type ControllerProcess } from './support/controller-process.ts';

const ADMIN = 'cda_protocol-version-test-000000';
const state = emptyObservedState();
const hello = (protocol: number, extra: Record<string, unknown> = {}) => ({
  type: 'hello',
  protocol,
  executorVersion: '9.9.9',
  hostname: 'node-a',
  state,
  digest: observedDigest(state),
  ...extra,
});

describe('the controller and an executor of another protocol version', () => {
  let dir: string;
  let controller: ControllerProcess;
  let call: ReturnType<typeof api>;
  let token: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'crossdock-protocol-'));
    controller = await startController({ dbFile: path.join(dir, 'c.db'), adminToken: ADMIN });
    call = api(controller.url, ADMIN);
    const registered = await call('POST', '/v1/hosts', { name: 'node-a', address: '198.51.100.11' });
    token = registered.body.token;
  });
  afterAll(async () => {
    await controller?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function connect(): Promise<{ socket: WebSocket; welcome: { protocol: number } }> {
    const socket = new WebSocket(`${controller.url.replace('http', 'ws')}/v1/agent`, { headers: { authorization: `Bearer ${token}` } });
    return new Promise((resolve, reject) => {
      socket.once('message', (data) => resolve({ socket, welcome: JSON.parse(data.toString()) }));
      socket.once('error', reject);
    });
  }

  it('closes a WebSocket whose hello is in protocol 2, says why, and logs a warning naming both versions', async () => {
    const { socket, welcome } = await connect();
    expect(welcome.protocol).toBe(PROTOCOL_VERSION);
    const closed = new Promise<[number, string]>((resolve) => socket.once('close', (code, reason) => resolve([code, reason.toString()])));
    // a future hello may hold fields this controller has never heard of: the version is what it answers to
    socket.send(JSON.stringify(hello(2, { capabilities: ['netlink'] })));
    expect(await closed).toEqual([1008, 'protocol version 2 is not spoken here; this controller speaks version 1']);
    await vi.waitFor(() => expect(controller.output()).toContain('refused the executor of host \\"node-a\\": it speaks protocol version 2, this controller 1'));
    expect((await call('GET', '/v1/hosts/node-a')).body.executor).toBeNull();
  });

  it('answers a polling hello in protocol 2 with 409 PROTOCOL_MISMATCH', async () => {
    const response = await fetch(`${controller.url}/v1/agent/state`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(hello(2)),
    });
    expect(response.status).toBe(409);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('PROTOCOL_MISMATCH');
    expect(body.error.message).toContain('protocol version 2 is not spoken here: this controller speaks version 1');
    expect((await call('GET', '/v1/hosts/node-a')).body.executor).toBeNull();
  });

  it("shows an executor's version and protocol from its hello in GET /v1/hosts", async () => {
    const { socket } = await connect();
    socket.send(JSON.stringify(hello(PROTOCOL_VERSION)));
    await vi.waitFor(async () => {
      const hosts = (await call('GET', '/v1/hosts')).body.items;
      expect(hosts).toMatchObject([{ name: 'node-a', status: 'online', executor: { version: '9.9.9', protocol: PROTOCOL_VERSION } }]);
    });
    socket.close();
  });
});

describe('the executor and a controller of another protocol version', () => {
  let server: Server;
  let wss: WebSocketServer;
  let url: string;
  let executor: ChildProcess | undefined;
  let log = '';
  /** what the executor sent: per connection, the types of its messages */
  let connections: string[][];
  let polls: string[];
  let answerPolling: (request: IncomingMessage) => { status: number; body: unknown };

  beforeAll(async () => {
    server = createServer((request, response) => {
      polls.push(`${request.method} ${request.url}`);
      request.resume();
      request.on('end', () => {
        const { status, body } = answerPolling(request);
        response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    });
    wss = new WebSocketServer({ server });
    wss.on('connection', (socket) => {
      const received: string[] = [];
      connections.push(received);
      socket.on('message', (data) => received.push((JSON.parse(data.toString()) as { type: string }).type));
      socket.send(
        JSON.stringify({
          type: 'welcome',
          protocol: 2,
          host: { name: 'node-a', address: '198.51.100.11', interface: 'eth0' },
          reconcileIntervalMs: 500,
          heartbeatIntervalMs: 500,
          newField: true,
        }),
      );
      socket.send(JSON.stringify({ type: 'job', jobId: 1, generation: 1, commands: [{ kind: 'not-a-command' }] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    if (executor && executor.exitCode === null) {
      const exited = new Promise((resolve) => executor!.once('exit', resolve));
      executor.kill('SIGTERM');
      await exited;
    }
  });
  afterAll(async () => {
    wss?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  function startExecutor(transport: string): void {
    connections = [];
    polls = [];
    log = '';
    const dir = mkdtempSync(path.join(tmpdir(), 'crossdock-protocol-exec-'));
    executor = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'executor/src/main.ts',
        '--controller',
        url,
        '--token',
        'cdh_x',
        '--transport',
        transport,
        '--docker-host',
        `unix://${dir}/none.sock`,
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    executor.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    executor.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    executor.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  }

  it('refuses a welcome in protocol 2 with an error naming both versions, runs nothing it was sent, and tries again later', async () => {
    startExecutor('websocket');
    await vi.waitFor(() => expect(connections.length).toBeGreaterThanOrEqual(2), { timeout: 20_000, interval: 100 });
    const refusals = log
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .filter((entry) => entry.level === 50);
    expect(refusals[0]?.msg).toBe(
      `refusing the controller at ${url}: it speaks protocol version 2, this executor (0.1.0) speaks version 1; install the executor of the controller's release (the join line POST /v1/hosts answers with)`,
    );
    // no job result, and no state report: only its own hello (sent on connect) at most
    for (const received of connections) expect(received.filter((type) => type !== 'hello')).toEqual([]);
    expect(log).not.toContain('ran a job');
    expect(log).not.toContain('refused a job');
  });

  it('over HTTP polling, stops at a 409 PROTOCOL_MISMATCH and says what the controller said', async () => {
    answerPolling = () => ({
      status: 409,
      body: { error: { code: 'PROTOCOL_MISMATCH', message: 'protocol version 1 is not spoken here: this controller speaks version 2' } },
    });
    startExecutor('polling');
    await vi.waitFor(
      () => expect(log).toContain('the controller refused this executor: protocol version 1 is not spoken here: this controller speaks version 2'),
      {
        timeout: 20_000,
        interval: 100,
      },
    );
    expect(polls.filter((p) => p.startsWith('GET'))).toEqual([]);
  });
});
