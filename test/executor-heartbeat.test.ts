// The executor's side of the heartbeat: a controller that stops pinging is given up after
// three heartbeat intervals of silence, and a controller that keeps pinging is kept. A bare
// WebSocket server plays the controller, so its silence is exact.
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { PROTOCOL_VERSION } from '@crossdock/shared';
import { startFakeExecutor, type FakeHost } from './support/fleet.ts';

const HEARTBEAT_MS = 100;

describe('executor heartbeat watchdog', () => {
  let server: WebSocketServer | undefined;
  let host: FakeHost | undefined;
  afterEach(async () => {
    host?.agent.stop();
    await host?.done.catch(() => {});
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
    host = undefined;
  });

  /** A controller that welcomes each connection with a 100 ms heartbeat; `pinging` decides whether it then pings. */
  async function controller(pinging: boolean) {
    server = new WebSocketServer({ port: 0, host: '127.0.0.1', path: '/v1/agent' });
    await new Promise((resolve) => server!.once('listening', resolve));
    const connections: Array<{ socket: WebSocket; openedAt: number; closedAt?: number }> = [];
    server.on('connection', (socket) => {
      const entry: { socket: WebSocket; openedAt: number; closedAt?: number } = { socket, openedAt: performance.now() };
      connections.push(entry);
      socket.send(
        JSON.stringify({
          type: 'welcome',
          protocol: PROTOCOL_VERSION,
          host: { name: 'node-a', address: '198.51.100.11', interface: 'eth0' },
          reconcileIntervalMs: 600_000,
          heartbeatIntervalMs: HEARTBEAT_MS,
        }),
      );
      const pings = pinging ? setInterval(() => socket.ping(), HEARTBEAT_MS) : undefined;
      socket.on('close', () => {
        clearInterval(pings);
        entry.closedAt = performance.now();
      });
    });
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections };
  }

  it('drops a controller silent for three heartbeats, and connects again', async () => {
    const { url, connections } = await controller(false);
    host = startFakeExecutor(url, 'cdh_heartbeat-test-token', { sleep: async () => {} });
    while (connections.length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    const first = connections[0]!;
    const silentFor = first.closedAt! - first.openedAt;
    expect(silentFor).toBeGreaterThanOrEqual(3 * HEARTBEAT_MS - 20);
    expect(silentFor).toBeLessThan(3 * HEARTBEAT_MS + 1_000);
  });

  it('keeps a controller that pings', async () => {
    const { url, connections } = await controller(true);
    host = startFakeExecutor(url, 'cdh_heartbeat-test-token', { sleep: async () => {} });
    while (connections.length < 1) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 15 * HEARTBEAT_MS));
    expect(connections).toHaveLength(1);
    expect(connections[0]!.closedAt).toBeUndefined();
  });
});
