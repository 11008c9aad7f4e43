// A controller listening on loopback (real Fastify, real SQLite file, real WebSockets) and
// executors with in-memory fake drivers: the channel and the reconcile loop end to end,
// without touching the machine.
import WebSocket from 'ws';
import { PROTOCOL_VERSION, emptyObservedState, observedDigest } from '@crossdock/shared';
import { createTestApp } from '../../controller/src/test-support.ts';
import { Agent, type Transport } from '../../executor/src/agent.ts';
import { FakeDockerDriver, FakeIpDriver, FakeVxlanDriver, FakeIptablesDriver, FakeSysctlDriver } from '../../executor/src/drivers/fake.ts';
import { ControllerTrust } from '@crossdock/shared/trust';
import { silentLogger, type Logger } from '../../executor/src/log.ts';
import type { Drivers } from '../../executor/src/observe.ts';

/** How long a test waits for the fleet to converge (vi.waitFor), and how often it looks. */
export const SETTLED = { timeout: 10_000, interval: 25 } as const;

export interface FakeHost {
  drivers: Drivers & { ip: FakeIpDriver; iptables: FakeIptablesDriver; docker: FakeDockerDriver; sysctl: FakeSysctlDriver };
  agent: Agent;
  done: Promise<unknown>;
}

export async function startFleetController(
  options: { reconcileIntervalMs?: number; heartbeatIntervalMs?: number; jobTimeoutMs?: number; maxSyncing?: number } = {},
) {
  const t = await createTestApp();
  // Rebuild with fast timers: the test app's defaults are production values.
  await t.app.close();
  const { buildApp } = await import('../../controller/src/app.ts');
  const { TEST_ADMIN_TOKEN } = await import('../../controller/src/test-support.ts');
  const app = await buildApp({
    prisma: t.prisma,
    ipam: t.ipam,
    adminToken: TEST_ADMIN_TOKEN,
    ...(options.maxSyncing === undefined ? {} : { maxSyncing: options.maxSyncing }),
    reconciler: {
      reconcileIntervalMs: options.reconcileIntervalMs ?? 200,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 200,
      jobTimeoutMs: options.jobTimeoutMs ?? 10_000,
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const hosts: FakeHost[] = [];

  async function call(method: string, route: string, body?: unknown) {
    const response = await app.inject({ method: method as 'GET', url: route, headers: t.auth, ...(body === undefined ? {} : { payload: body as object }) });
    return { status: response.statusCode, body: response.body ? JSON.parse(response.body) : undefined };
  }

  function startExecutor(token: string, opts: { transport?: Transport; sleep?: (ms: number) => Promise<void> } = {}): FakeHost {
    const host = startFakeExecutor(url, token, opts);
    hosts.push(host);
    return host;
  }

  return {
    app,
    url,
    prisma: t.prisma,
    auth: t.auth,
    call,
    startExecutor,
    async close() {
      for (const h of hosts) h.agent.stop();
      await Promise.allSettled(hosts.map((h) => h.done));
      await app.close();
      await t.close();
    },
  };
}

/** An executor (the real Agent) on in-memory drivers, connected to the controller at `url`; stop it with agent.stop(). */
export function startFakeExecutor(
  url: string,
  token: string,
  opts: { transport?: Transport; sleep?: (ms: number) => Promise<void>; reconcileIntervalMs?: number; caFingerprint?: string; log?: Logger } = {},
): FakeHost {
  const drivers = {
    ip: new FakeIpDriver(),
    vxlan: new FakeVxlanDriver(),
    iptables: new FakeIptablesDriver({ forwardPolicy: 'DROP' }),
    docker: new FakeDockerDriver(),
    sysctl: new FakeSysctlDriver(),
  };
  const agent = new Agent({
    controllers: [url],
    token,
    drivers,
    job: { daemonJsonPath: '/nonexistent/daemon.json', engineRestartCommand: ['true'] },
    transport: opts.transport ?? 'websocket',
    log: opts.log ?? silentLogger,
    trust: new ControllerTrust({ caFingerprint: opts.caFingerprint }),
    ...(opts.sleep ? { sleep: opts.sleep } : {}),
    ...(opts.reconcileIntervalMs ? { reconcileIntervalMs: opts.reconcileIntervalMs } : {}),
  });
  return { drivers, agent, done: agent.run() };
}

/** An executor that says hello (an empty host) and then never answers a job: online, and behind. */
export function silentExecutor(url: string, token: string): Promise<WebSocket> {
  const state = emptyObservedState();
  const hello = { type: 'hello', protocol: PROTOCOL_VERSION, executorVersion: 'silent', hostname: 'silent', state, digest: observedDigest(state) };
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/agent`, { headers: { authorization: `Bearer ${token}` } });
    socket.on('open', () => socket.send(JSON.stringify(hello), () => resolve(socket)));
    socket.on('error', reject);
  });
}
