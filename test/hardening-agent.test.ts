// Hardening of the agent surface and of numeric input, through a real controller process:
// a host's token reaches only its own jobs, a result is accepted once and only while its job
// waits for it, numbers never become Infinity, and one host flooding oversized reports neither
// makes the controller store huge jobs nor stalls everyone else.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, emptyObservedState, observedDigest, type ObservedState } from '@crossdock/shared';
import { REPO_ROOT, api, startController, type ControllerProcess } from './support/controller-process.ts';

const ADMIN = 'cda_hardening-admin-token-0000000';

function hello(state: ObservedState = emptyObservedState()) {
  return { type: 'hello', protocol: PROTOCOL_VERSION, executorVersion: 'test', hostname: 'test', state, digest: observedDigest(state) };
}

function resultOf(jobId: number, count: number, text = 'done') {
  return {
    type: 'result',
    jobId,
    generation: 0,
    accepted: true,
    results: Array.from({ length: count }, (_, index) => ({ index, text, ok: true, exitCode: 0, stdout: text, stderr: '', durationMs: 1 })),
    digest: '000000000000',
  };
}

/** A WebSocket executor that records what it is sent and answers nothing by itself. */
async function rawExecutor(url: string, token: string) {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/agent`, { headers: { authorization: `Bearer ${token}` } });
  const received: any[] = [];
  socket.on('message', (data) => received.push(JSON.parse(data.toString())));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return {
    socket,
    received,
    send: (message: unknown) => socket.send(typeof message === 'string' ? message : JSON.stringify(message)),
    jobs: () => received.filter((m) => m.type === 'job'),
    close: () => socket.close(),
  };
}

async function post(url: string, route: string, token: string, body: unknown) {
  const response = await fetch(`${url}${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

describe('agent channel and numeric input hardening, on a real controller process', () => {
  let dir: string;
  let controller: ControllerProcess;
  let call: ReturnType<typeof api>;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'crossdock-hardening-'));
    controller = await startController({ dbFile: path.join(dir, 'c.db'), adminToken: ADMIN, env: { CROSSDOCK_LOG_LEVEL: 'info' } });
    call = api(controller.url, ADMIN);
    for (const [name, address] of [
      ['host-a', '198.51.100.11'],
      ['host-b', '198.51.100.12'],
      ['host-c', '198.51.100.13'],
    ] as const) {
      const r = await call('POST', '/v1/hosts', { name, address });
      expect(r.status).toBe(201);
      tokens[name] = r.body.token;
    }
  });
  afterAll(async () => {
    await controller?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function jobOf(id: number) {
    return (await call('GET', `/v1/jobs/${id}`)).body;
  }

  describe("a host's token reaches only its own jobs", () => {
    it("refuses, over HTTP, a result for another host's job, for a job that does not exist, and with more items than commands; then takes the real one once", async () => {
      const b = await rawExecutor(controller.url, tokens['host-b']!);
      b.send(hello());
      const job = await vi.waitFor(() => {
        const found = b.jobs()[0];
        expect(found).toBeDefined();
        return found;
      });
      const commands = job.commands.length as number;
      expect(commands).toBeGreaterThan(0);

      const forged = await post(controller.url, `/v1/agent/jobs/${job.jobId}/result`, tokens['host-a']!, resultOf(job.jobId, 1, 'forged by host-a'));
      expect(forged.status).toBe(404);
      expect(forged.body.error.code).toBe('JOB_NOT_FOUND');
      const forgedRefusal = await post(controller.url, `/v1/agent/jobs/${job.jobId}/result`, tokens['host-a']!, {
        ...resultOf(job.jobId, 0),
        accepted: false,
        error: 'forged',
      });
      expect(forgedRefusal.status).toBe(404);

      const missingJob = await post(controller.url, '/v1/agent/jobs/999999/result', tokens['host-b']!, resultOf(999999, 1));
      expect(missingJob.status).toBe(404);
      expect(missingJob.body.error.code).toBe('JOB_NOT_FOUND');

      const tooMany = await post(controller.url, `/v1/agent/jobs/${job.jobId}/result`, tokens['host-b']!, resultOf(job.jobId, commands + 1));
      expect(tooMany.status).toBe(400);
      expect(tooMany.body.error.message).toContain(`${commands} command`);

      const untouched = await jobOf(job.jobId);
      expect(untouched.status).toBe('running');
      expect(untouched.results.every((r: { ok: boolean | null }) => r.ok === null)).toBe(true);

      const real = await post(controller.url, `/v1/agent/jobs/${job.jobId}/result`, tokens['host-b']!, resultOf(job.jobId, commands, 'host-b ran it'));
      expect(real.status).toBe(200);
      await vi.waitFor(async () => expect((await jobOf(job.jobId)).status).toBe('succeeded'));
      const done = await jobOf(job.jobId);
      expect(done.results.every((r: { stdout: string }) => r.stdout === 'host-b ran it')).toBe(true);

      const again = await post(controller.url, `/v1/agent/jobs/${job.jobId}/result`, tokens['host-b']!, resultOf(job.jobId, commands, 'again'));
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('JOB_NOT_WAITING');
      expect((await jobOf(job.jobId)).results[0].stdout).toBe('host-b ran it');
      b.close();
    });

    it("drops, over the WebSocket, a result for another host's job and leaves that job untouched", async () => {
      const c = await rawExecutor(controller.url, tokens['host-c']!);
      c.send(hello());
      const job = await vi.waitFor(() => {
        const found = c.jobs()[0];
        expect(found).toBeDefined();
        return found;
      });
      const a = await rawExecutor(controller.url, tokens['host-a']!);
      a.send({ ...resultOf(job.jobId, 0), accepted: false, error: 'forged over the socket' });
      a.send(resultOf(job.jobId, 1, 'forged over the socket'));
      // A round trip on a's socket: its messages were handled before this hello's answer.
      a.send(hello());
      await vi.waitFor(() => expect(a.jobs().length).toBeGreaterThan(0));
      const after = await jobOf(job.jobId);
      expect(after.status).toBe('running');
      expect(after.error).toBeNull();
      expect(after.results.every((r: { stdout: string }) => r.stdout === '')).toBe(true);
      expect(controller.output()).toMatch(/refused a job result/);

      c.send(resultOf(job.jobId, job.commands.length, 'host-c ran it'));
      await vi.waitFor(async () => expect((await jobOf(job.jobId)).status).toBe('succeeded'));
      expect((await jobOf(job.jobId)).results[0].stdout).toBe('host-c ran it');
      a.close();
      c.close();
    });
  });

  describe('numbers are finite integers within their documented range', () => {
    it.each([
      ['/v1/jobs?limit=1e400', 'limit'],
      ['/v1/jobs?limit=Infinity', 'limit'],
      ['/v1/jobs?limit=0', 'limit'],
      ['/v1/jobs?limit=1001', 'limit'],
      ['/v1/jobs?limit=2.5', 'limit'],
      ['/v1/pools/default/available?limit=1e400', 'limit'],
      ['/v1/pools/default/available?limit=100000', 'limit'],
      ['/v1/pools/default/available?prefixLength=1e400', 'prefixLength'],
      ['/v1/pools/default/available?prefixLength=-1', 'prefixLength'],
      ['/v1/jobs/1e400', 'id'],
      ['/v1/subnets/99999999999', 'id'],
    ])('GET %s answers 400 VALIDATION_FAILED naming %s', async (route, field) => {
      const r = await call('GET', route);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('VALIDATION_FAILED');
      expect(r.body.error.message).toContain(field);
    });

    it('says what the maximum of available is', async () => {
      const r = await call('GET', '/v1/pools/default/available?limit=5000');
      expect(r.body.error.message).toMatch(/1 to 1000/);
    });

    it('refuses a poll wait or a result id that is not a finite integer', async () => {
      for (const route of ['/v1/agent/jobs?wait=1e400', '/v1/agent/jobs?wait=61']) {
        const response = await fetch(`${controller.url}${route}`, { headers: { authorization: `Bearer ${tokens['host-a']}` } });
        expect(response.status, route).toBe(400);
      }
      const r = await post(controller.url, '/v1/agent/jobs/1e400/result', tokens['host-a']!, resultOf(1, 1));
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('VALIDATION_FAILED');
    });
  });

  describe('one host flooding oversized reports', () => {
    const FLOOD_ROUTES = 200_000;

    function floodState(): ObservedState {
      const state = emptyObservedState();
      for (let i = 0; i < FLOOD_ROUTES; i++) {
        state.routes.push({ dst: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`, via: '198.51.100.99', dev: 'eth0' });
      }
      return state;
    }

    it('is refused without storing a job, and /healthz keeps answering quickly meanwhile', async () => {
      const dbBefore = statSync(path.join(dir, 'c.db')).size;
      const jobsBefore = (await call('GET', '/v1/jobs?host=host-a&limit=1000')).body.items.length;

      const flooder = spawn(
        process.execPath,
        ['--import', 'tsx', 'test/support/flood-executor.ts', controller.url, tokens['host-a']!, '10', String(FLOOD_ROUTES)],
        {
          cwd: REPO_ROOT,
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      const flooded = new Promise<number | null>((resolve) => flooder.once('exit', resolve));
      const latencies: number[] = [];
      let flooding = true;
      void flooded.then(() => (flooding = false));
      while (flooding) {
        const started = performance.now();
        await (await fetch(`${controller.url}/healthz`)).text();
        latencies.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await flooded).toBe(0);

      const flood = JSON.stringify(hello(floodState()));
      const r = await post(controller.url, '/v1/agent/state', tokens['host-a']!, flood);
      expect(r.status).toBe(413);
      expect(r.body.error.code).toBe('PAYLOAD_TOO_LARGE');
      expect(r.body.error.message).toMatch(/routes/);

      // A normal hello after the flood is still answered: the channel is usable.
      const a = await rawExecutor(controller.url, tokens['host-a']!);
      a.send(hello());
      await vi.waitFor(() => expect(a.jobs().length).toBeGreaterThan(0), { timeout: 15_000 });
      a.close();

      expect(controller.output()).toMatch(/refused an oversized report/);
      const jobs = (await call('GET', '/v1/jobs?host=host-a&limit=1000')).body.items as Array<{ commandCount: number }>;
      expect(jobs.length - jobsBefore).toBeLessThanOrEqual(2);
      expect(Math.max(...jobs.map((j) => j.commandCount))).toBeLessThan(100);
      expect(statSync(path.join(dir, 'c.db')).size - dbBefore).toBeLessThan(5 * 1024 * 1024);
      latencies.sort((x, y) => x - y);
      expect(latencies.length).toBeGreaterThan(3);
      // Refused at the frame header, a flood costs the controller next to nothing: on a quiet
      // machine the slowest probe took 25 ms (and 457 ms before, when each 13 MB hello was read).
      expect(latencies.at(-1)!, `healthz latencies (ms): ${latencies.map((l) => l.toFixed(0)).join(' ')}`).toBeLessThan(100);
    });

    it('lists jobs without reading their commands', async () => {
      const r = await call('GET', '/v1/jobs?limit=1000');
      expect(r.status).toBe(200);
      for (const item of r.body.items) expect(item.commandCount).toBeGreaterThanOrEqual(0);
    });
  });
});
