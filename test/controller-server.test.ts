// The controller as a real process on a real SQLite file: concurrent allocation over HTTP,
// and durability of every acknowledged allocation across SIGKILL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastAddress, mustParseCidr, overlaps } from '@crossdock/shared';
import { api, startController, type ControllerProcess } from './support/controller-process.ts';

const ADMIN = 'cda_integration-admin-token-000000';

function assertDisjoint(cidrs: string[]): void {
  const sorted = cidrs.map(mustParseCidr).sort((a, b) => a.network - b.network);
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1]!;
    expect(overlaps(previous, sorted[i]!), `${cidrs[i - 1]} overlaps ${cidrs[i]}`).toBe(false);
    expect(lastAddress(previous)).toBeLessThan(sorted[i]!.network);
  }
}

describe('controller process on a real SQLite file', () => {
  let dir: string;
  let controller: ControllerProcess | undefined;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'crossdock-server-'));
  });
  afterAll(async () => {
    await controller?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 200 concurrent mixed allocations with only 201 or 409, and the 201s never overlap', async () => {
    controller = await startController({ dbFile: path.join(dir, 'burst.db'), adminToken: ADMIN });
    const call = api(controller.url, ADMIN);
    expect((await call('POST', '/v1/pools', { name: 'burst', cidr: '10.64.0.0/20', subnetPrefixLength: 24 })).status).toBe(201);
    for (let i = 1; i <= 8; i++) {
      expect((await call('POST', '/v1/hosts', { name: `h${i}`, address: `198.51.100.${10 + i}`, allocate: false })).status).toBe(201);
    }
    // Mixed: by prefix length (22..28) and explicit CIDRs that collide with each other and
    // with what first fit hands out; the pool holds 16 /24s, so it also runs out.
    const requests = Array.from({ length: 200 }, (_, i) => {
      const host = `h${(i % 8) + 1}`;
      const network = `n${i}`;
      if (i % 3 === 0) return { host, pool: 'burst', network, cidr: `10.64.${(i * 7) % 16}.${(i % 4) * 64}/26` };
      return { host, pool: 'burst', network, prefixLength: 22 + (i % 7) };
    });
    const answers = await Promise.all(requests.map((r) => call('POST', '/v1/subnets', r)));
    const statuses = new Set(answers.map((a) => a.status));
    expect(
      [...statuses].every((s) => s === 201 || s === 409),
      `statuses: ${[...statuses].join(',')}`,
    ).toBe(true);
    const created = answers.filter((a) => a.status === 201).map((a) => a.body.cidr as string);
    expect(created.length).toBeGreaterThan(20);
    expect(answers.some((a) => a.status === 409)).toBe(true);
    for (const a of answers.filter((x) => x.status === 409)) {
      expect(['SUBNET_OVERLAP', 'POOL_EXHAUSTED']).toContain(a.body.error.code);
    }
    assertDisjoint(created);
    const listed = await call('GET', '/v1/subnets?pool=burst');
    expect(listed.body.items.map((s: { cidr: string }) => s.cidr).sort()).toEqual([...created].sort());
    await controller.stop();
    controller = undefined;
  });

  it('keeps every acknowledged allocation when killed with SIGKILL mid-burst', async () => {
    const dbFile = path.join(dir, 'kill.db');
    controller = await startController({ dbFile, adminToken: ADMIN });
    let call = api(controller.url, ADMIN);
    expect((await call('POST', '/v1/pools', { name: 'kill', cidr: '10.80.0.0/14', subnetPrefixLength: 28 })).status).toBe(201);
    expect((await call('POST', '/v1/hosts', { name: 'victim', address: '198.51.100.50', allocate: false })).status).toBe(201);

    const acknowledged: Array<{ id: number; cidr: string }> = [];
    let killed = false;
    const worker = async (w: number) => {
      for (let i = 0; !killed; i++) {
        try {
          const r = await call('POST', '/v1/subnets', { host: 'victim', pool: 'kill', network: `w${w}-${i}`, prefixLength: 26 + (i % 3) });
          if (r.status === 201) acknowledged.push({ id: r.body.id, cidr: r.body.cidr });
          else throw new Error(`unexpected ${r.status} ${JSON.stringify(r.body)}`);
        } catch (error) {
          if (killed) return;
          throw error;
        }
      }
    };
    const workers = Array.from({ length: 16 }, (_, w) => worker(w));
    while (acknowledged.length < 300) await new Promise((r) => setTimeout(r, 5));
    killed = true;
    await controller.kill();
    await Promise.allSettled(workers);
    const acked = [...acknowledged];

    controller = await startController({ dbFile, adminToken: ADMIN });
    call = api(controller.url, ADMIN);
    const listed = await call('GET', '/v1/subnets?host=victim');
    const present = new Map<number, string>(listed.body.items.map((s: { id: number; cidr: string }) => [s.id, s.cidr]));
    for (const a of acked) expect(present.get(a.id), `acknowledged subnet ${a.id} ${a.cidr} lost`).toBe(a.cidr);
    assertDisjoint([...present.values()]);
    // The index rebuilt at start-up agrees with the database: first fit continues past them.
    const next = await call('POST', '/v1/subnets', { host: 'victim', pool: 'kill', network: 'after-restart', prefixLength: 26 });
    expect(next.status).toBe(201);
    assertDisjoint([...present.values(), next.body.cidr]);
    // Two controller starts and a 300-allocation burst: more than the default 30 s on a loaded machine.
  }, 90_000);
});
