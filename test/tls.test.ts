// TLS by default (issue 17), against the real controller process with certificates of its own
// (not the test run's CA): what it writes and serves, the join line's pin, executors that do
// and do not match it, a plain-HTTP client, rotation and restart, and TLS off.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { ControllerTrust, pemFingerprint, trustedRequest } from '@crossdock/shared/trust';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../executor/src/config.ts';
import type { Logger } from '../executor/src/log.ts';
import { startController, type ControllerProcess } from './support/controller-process.ts';
import { startFakeExecutor, type FakeHost } from './support/fleet.ts';

const ADMIN = 'cda_tls-suite-admin-token-000000';
const ADVERTISED = 'ctl.tls-test.example';
const EXTRA_SAN = '203.0.113.77';
const PLAIN_HTTP_ANSWER_WITHIN_MS = 5_000;
const SETTLED = { timeout: 20_000, interval: 50 } as const;

/** A logger that keeps what it was told, for the executor's refusal. */
function capturingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (a: unknown, b?: unknown) => void lines.push(typeof a === 'string' ? a : `${String(b)} ${JSON.stringify(a)}`);
  return { lines, info: keep, warn: keep, error: keep } as unknown as Logger & { lines: string[] };
}

/** The certificate a TLS server at url serves now, without trusting it. */
function servedCertificate(url: string): Promise<X509Certificate> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      resolve(new X509Certificate(socket.getPeerCertificate().raw));
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe('TLS on every channel, trust pinned at join', () => {
  let dir: string;
  let controller: ControllerProcess;
  let trust: ControllerTrust;
  const executors: FakeHost[] = [];

  async function call(method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> {
    const response = await trustedRequest(trust, `${controller.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: response.text ? JSON.parse(response.text) : undefined };
  }

  function start(listen?: string): Promise<ControllerProcess> {
    return startController({
      dbFile: path.join(dir, 'crossdock.db'),
      ...(listen ? { listen } : {}),
      adminToken: ADMIN,
      env: { CROSSDOCK_ADVERTISE_URL: `https://${ADVERTISED}:7800`, CROSSDOCK_LOG_LEVEL: 'info' },
      args: ['--tls-san', EXTRA_SAN],
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'crossdock-tls-'));
    controller = await start();
    trust = new ControllerTrust({ caFile: path.join(dir, 'ca.pem') });
  });

  afterAll(async () => {
    for (const e of executors) e.agent.stop();
    await Promise.allSettled(executors.map((e) => e.done));
    await controller?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes a CA and a server certificate beside the database on first start: keys 0600, names the listen and advertised addresses', async () => {
    expect(controller.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    for (const key of ['ca-key.pem', 'server-key.pem']) expect(statSync(path.join(dir, key)).mode & 0o777).toBe(0o600);
    const caPem = readFileSync(path.join(dir, 'ca.pem'), 'utf8');
    expect(controller.caFingerprint).toBe(pemFingerprint(caPem));
    expect(controller.output()).toContain(`CA fingerprint (every join line pins it): ${controller.caFingerprint}`);

    const served = await servedCertificate(controller.url);
    const ca = new X509Certificate(caPem);
    expect(served.checkIssued(ca) && served.verify(ca.publicKey)).toBe(true);
    expect(ca.ca).toBe(true);
    expect(served.ca).toBe(false);
    for (const name of ['IP Address:127.0.0.1', `DNS:${ADVERTISED}`, `IP Address:${EXTRA_SAN}`]) expect(served.subjectAltName).toContain(name);
    expect(served.checkHost(ADVERTISED)).toBe(ADVERTISED);
    expect(served.checkIP('127.0.0.1')).toBe('127.0.0.1');

    expect((await call('GET', '/healthz')).status).toBe(200);
  });

  it('answers the CA fingerprint with every host token, and the join line pins it', async () => {
    const added = await call('POST', '/v1/hosts', { name: 'node-1', address: '198.51.100.21' });
    expect(added.status).toBe(201);
    expect(added.body.caFingerprint).toBe(controller.caFingerprint);
    expect(added.body.join).toBe(
      `node crossdock-executor.mjs install --controller https://${ADVERTISED}:7800 --token ${added.body.token} --ca-fingerprint ${controller.caFingerprint}`,
    );
    const rotated = await call('POST', '/v1/hosts/node-1/token');
    expect(rotated.body.caFingerprint).toBe(controller.caFingerprint);
    expect(rotated.body.join).toContain(`--ca-fingerprint ${controller.caFingerprint}`);
    expect((await call('GET', '/v1/tls')).body).toMatchObject({ caFingerprint: controller.caFingerprint, source: 'generated' });
  });

  it('an executor with the pinned fingerprint connects over WSS and runs its jobs', async () => {
    const { body } = await call('POST', '/v1/hosts', { name: 'node-2', address: '198.51.100.22' });
    const host = startFakeExecutor(controller.url, body.token, { caFingerprint: controller.caFingerprint, reconcileIntervalMs: 1_000 });
    executors.push(host);
    await vi.waitFor(async () => {
      const { body: h } = await call('GET', '/v1/hosts/node-2');
      expect(h.status).toBe('online');
      expect(h.generation.applied).toBe(h.generation.desired);
    }, SETTLED);
    expect(host.agent.transportInUse).toBe('websocket');
    expect(host.drivers.docker.networks.size).toBe(1);
  });

  it('an executor with another fingerprint refuses the controller, says which it expected and saw, and changes nothing', async () => {
    const { body } = await call('POST', '/v1/hosts', { name: 'node-3', address: '198.51.100.23' });
    const wrong = `sha256:${'0'.repeat(64)}`;
    const log = capturingLogger();
    const host = startFakeExecutor(controller.url, body.token, { caFingerprint: wrong, log, sleep: () => new Promise((r) => setTimeout(r, 200)) });
    executors.push(host);
    await vi.waitFor(() => expect(host.agent.attempts).toBeGreaterThanOrEqual(2), SETTLED);
    const refusal = log.lines.find((l) => l.includes('does not contain the pinned CA'));
    expect(refusal).toContain(`expected ${wrong}`);
    expect(refusal).toContain(`saw `);
    expect(refusal).toContain(controller.caFingerprint!);
    expect(host.agent.connected).toBe(false);
    expect(host.drivers.docker.networks.size).toBe(0);
    expect(host.drivers.ip.routes.size).toBe(0);
    expect((await call('GET', '/v1/hosts/node-3')).body.status).toBe('pending');
    host.agent.stop();
  });

  it('a CA file that does not hold the pinned CA is refused before any connection', () => {
    expect(() => new ControllerTrust({ caFingerprint: `sha256:${'1'.repeat(64)}`, caFile: path.join(dir, 'ca.pem') })).toThrow(
      new RegExp(`does not hold the pinned CA: expected sha256:1{64}, it holds ${controller.caFingerprint}`),
    );
    expect(() =>
      loadConfig(['--controller', controller.url.replace('https', 'http'), '--token', 't', '--ca-fingerprint', controller.caFingerprint!], {}),
    ).toThrow(/plain http:\/\/, but a CA is pinned/);
  });

  it('a client speaking plain HTTP to it gets a clear answer at once, not a hang', async () => {
    const started = Date.now();
    const response = await fetch(`${controller.url.replace('https:', 'http:')}/healthz`, { signal: AbortSignal.timeout(PLAIN_HTTP_ANSWER_WITHIN_MS) });
    expect(Date.now() - started).toBeLessThan(PLAIN_HTTP_ANSWER_WITHIN_MS);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { code: 'TLS_REQUIRED', message: expect.stringMatching(/speaks HTTPS only; use an https:\/\/ URL/) } });
  });

  it('renews the server certificate from the same CA without dropping connected executors', async () => {
    const [online] = executors;
    const before = await servedCertificate(controller.url);
    const attemptsBefore = online!.agent.attempts;
    const rotated = await call('POST', '/v1/tls/rotate');
    expect(rotated.status).toBe(200);
    expect(rotated.body.caFingerprint).toBe(controller.caFingerprint);
    const after = await servedCertificate(controller.url);
    expect(after.fingerprint256).not.toBe(before.fingerprint256);
    expect(`sha256:${after.fingerprint256.replace(/:/g, '').toLowerCase()}`).toBe(rotated.body.certificate.fingerprint);
    expect(after.subjectAltName).toBe(before.subjectAltName);
    // the WebSocket of node-2 never dropped, and a new executor trusts the new certificate through the same pin
    expect(online!.agent.connected).toBe(true);
    expect(online!.agent.attempts).toBe(attemptsBefore);
    const { body } = await call('POST', '/v1/hosts', { name: 'node-4', address: '198.51.100.24' });
    executors.push(startFakeExecutor(controller.url, body.token, { caFingerprint: controller.caFingerprint }));
    await vi.waitFor(async () => expect((await call('GET', '/v1/hosts/node-4')).body.status).toBe('online'), SETTLED);
  });

  it('reuses the CA and the server certificate across a restart, and executors reconnect', async () => {
    const files = ['ca.pem', 'ca-key.pem', 'server.pem', 'server-key.pem'].map((f) => readFileSync(path.join(dir, f), 'utf8'));
    const { host } = new URL(controller.url);
    await controller.stop();
    controller = await start(host); // the same port: the executors come back to it
    expect(['ca.pem', 'ca-key.pem', 'server.pem', 'server-key.pem'].map((f) => readFileSync(path.join(dir, f), 'utf8'))).toEqual(files);
    expect(controller.output()).not.toContain('issued a server certificate');
    await vi.waitFor(async () => expect((await call('GET', '/v1/hosts/node-2')).body.status).toBe('online'), { timeout: 60_000, interval: 200 });
  }, 120_000);
});

describe('CROSSDOCK_TLS=off', () => {
  it('serves plain HTTP, writes no certificate, warns at start, and joins without a pin', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'crossdock-tls-off-'));
    const controller = await startController({ dbFile: path.join(dir, 'crossdock.db'), adminToken: ADMIN, env: { CROSSDOCK_TLS: 'off' } }).catch((error) => {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    });
    try {
      expect(controller.url).toMatch(/^http:\/\//);
      expect(controller.caFingerprint).toBeUndefined();
      // The warning is pino's (its own stream); the listening lines are console's: either may come first.
      await vi.waitFor(
        () => expect(controller.output()).toMatch(/"level":40.*TLS is off \(CROSSDOCK_TLS=off\): tokens and jobs cross the network in clear text/),
        { timeout: 5_000, interval: 50 },
      );
      const response = await fetch(`${controller.url}/v1/hosts`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'plain-1', address: '198.51.100.31' }),
      });
      const body = (await response.json()) as { caFingerprint: unknown; join: string };
      expect(body.caFingerprint).toBeNull();
      expect(body.join).not.toContain('--ca-fingerprint');
      expect(() => statSync(path.join(dir, 'ca.pem'))).toThrow();
      const tlsState = await fetch(`${controller.url}/v1/tls`, { headers: { authorization: `Bearer ${ADMIN}` } });
      expect(tlsState.status).toBe(409);
    } finally {
      await controller.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000); // a controller start took 28 s at load 20 on the shared 2 cores
});
