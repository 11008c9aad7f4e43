// An executor always answers a job, through a real controller process: when observing the host
// fails after the job ran, the result still arrives (without a digest, saying why), instead of
// the job waiting out its timeout.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Agent } from '../executor/src/agent.ts';
import { FakeDockerDriver, FakeIpDriver, FakeVxlanDriver, FakeIptablesDriver, FakeSysctlDriver } from '../executor/src/drivers/fake.ts';
import { silentLogger } from '../executor/src/log.ts';
import { api, startController, type ControllerProcess } from './support/controller-process.ts';

const ADMIN = 'cda_executor-result-admin-token-00';

describe('executor results when observation fails', () => {
  let dir: string;
  let controller: ControllerProcess;
  let agent: Agent | undefined;
  let done: Promise<unknown> | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'crossdock-exec-result-'));
    controller = await startController({ dbFile: path.join(dir, 'c.db'), adminToken: ADMIN });
  });
  afterAll(async () => {
    agent?.stop();
    await done;
    await controller.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends the result with what is known and says that observation failed', async () => {
    const call = api(controller.url, ADMIN);
    const a = await call('POST', '/v1/hosts', { name: 'node-a', address: '198.51.100.11' });
    const ip = new FakeIpDriver();
    const drivers = {
      ip,
      vxlan: new FakeVxlanDriver(),
      iptables: new FakeIptablesDriver({ forwardPolicy: 'DROP' }),
      docker: new FakeDockerDriver(),
      sysctl: new FakeSysctlDriver(),
    };
    agent = new Agent({
      controllers: [controller.url],
      token: a.body.token,
      drivers,
      job: { daemonJsonPath: '/nonexistent/daemon.json', engineRestartCommand: null },
      transport: 'websocket',
      log: silentLogger,
    });
    done = agent.run();
    await vi.waitFor(async () => expect((await call('GET', '/v1/hosts/node-a')).body.generation.applied).toBeGreaterThanOrEqual(0), { timeout: 10_000 });
    await vi.waitFor(
      async () => {
        const jobs = (await call('GET', '/v1/jobs?host=node-a')).body.items;
        expect(jobs.length).toBeGreaterThan(0);
        expect(jobs.every((j: { status: string }) => j.status === 'succeeded')).toBe(true);
      },
      { timeout: 10_000 },
    );

    // From now on the host cannot be observed; the next job still gets its answer.
    ip.observeRoutes = () => Promise.reject(new Error('netlink socket closed'));
    const b = await call('POST', '/v1/hosts', { name: 'node-b', address: '198.51.100.12' });
    const route = b.body.host.subnets[0].cidr;
    const job = await vi.waitFor(
      async () => {
        const jobs = (await call('GET', '/v1/jobs?host=node-a')).body.items;
        const found = jobs.find((j: { reason: string; status: string }) => j.reason.includes('node-b') && j.status !== 'running');
        expect(found).toBeDefined();
        return found;
      },
      { timeout: 10_000 },
    );
    expect(job.status).toBe('succeeded');
    expect(job.error).toMatch(/observing the host after the job failed: netlink socket closed/);
    expect(ip.routes.get(route)?.via).toBe('198.51.100.12');
  });
});
