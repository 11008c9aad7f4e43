import { afterEach, expect, it } from 'vitest';
import { createTestApp, describeEachStore } from '../test-support.ts';
import { JOB_HISTORY_PER_HOST, JobStore } from './jobs.ts';

describeEachStore(() => {
  let t: Awaited<ReturnType<typeof createTestApp>> | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  async function hostsAndStore(names: string[]) {
    t = await createTestApp();
    const ids: number[] = [];
    for (const [i, name] of names.entries()) {
      const registered = await t.app.inject({ method: 'POST', url: '/v1/hosts', headers: t.auth, payload: { name, address: `198.51.100.${11 + i}` } });
      ids.push(registered.json().host.id as number);
    }
    return { hostIds: ids, jobs: new JobStore(t.prisma, t.ipam.writer) };
  }

  it('times out a fan-out larger than one statement may bind, and only jobs still waiting', async () => {
    const {
      hostIds: [hostId],
      jobs,
    } = await hostsAndStore(['node-a']);
    const ids = await jobs.create(
      Array.from({ length: 1_200 }, (_, i) => ({ hostId: hostId!, generation: i + 1, reason: 'test', commands: [], status: 'running' as const })),
    );
    expect(ids).toHaveLength(1_200);
    await jobs.finish(ids[0]!, { status: 'succeeded', results: [] });
    const timedOut: number[][] = [];
    jobs.events.on('timedOut', (batch) => timedOut.push(batch));

    await jobs.timeOut(ids, 'the executor reconnected');

    expect(timedOut).toEqual([ids]);
    const byStatus = await t!.prisma.job.groupBy({ by: ['status'], _count: true, where: { hostId: hostId! } });
    expect(Object.fromEntries(byStatus.map((g) => [g.status, g._count]))).toEqual({ succeeded: 1, timeout: 1_199 });
    const sample = await t!.prisma.job.findUniqueOrThrow({ where: { id: ids[1_100]! } });
    expect(sample.error).toBe('the executor reconnected');
  });

  it('hands back each job id in the order given, across chunks of several megabytes, with what was given stored', async () => {
    const { hostIds, jobs } = await hostsAndStore(['node-a', 'node-b', 'node-c']);
    // 60 jobs of about 600 KiB: more than one insert's byte budget, hosts interleaved.
    const route = (i: number) => ({ kind: 'route.replace' as const, dst: `10.${i >> 8}.${i & 255}.0/24`, via: '198.51.100.12', dev: 'eth0' });
    const table = Array.from({ length: 8_000 }, (_, i) => route(i));
    const wanted = Array.from({ length: 60 }, (_, i) => ({
      hostId: hostIds[(i * 7) % 3]!,
      generation: 100 - i,
      reason: `job ${i}`,
      commands: i % 2 === 0 ? table : [route(i)],
      status: 'running' as const,
    }));
    const before = Date.now();
    const ids = await jobs.create(wanted);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const rows = await t!.prisma.job.findMany({ where: { id: { in: ids } } });
    const byId = new Map(rows.map((r) => [r.id, r]));
    ids.forEach((id, i) => {
      const row = byId.get(id)!;
      expect({ hostId: row.hostId, generation: row.generation, reason: row.reason, status: row.status, commandCount: row.commandCount }).toEqual({
        hostId: wanted[i]!.hostId,
        generation: wanted[i]!.generation,
        reason: wanted[i]!.reason,
        status: 'running',
        commandCount: wanted[i]!.commands.length,
      });
      expect(JSON.parse(row.commands)).toEqual(wanted[i]!.commands);
      expect(row.createdAt.getTime()).toBeGreaterThanOrEqual(before - 1_000);
      expect(row.createdAt.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
    });
  });

  it(`keeps the newest ${JOB_HISTORY_PER_HOST} jobs of each host pruned, and only of the hosts named`, async () => {
    const { hostIds, jobs } = await hostsAndStore(['node-a', 'node-b', 'node-c']);
    const [a, b, c] = hostIds as [number, number, number];
    const make = (hostId: number, n: number) =>
      jobs.create(Array.from({ length: n }, (_, i) => ({ hostId, generation: i + 1, reason: 'test', commands: [], status: 'running' as const })));
    const idsA = await make(a, JOB_HISTORY_PER_HOST + 30);
    const idsB = await make(b, JOB_HISTORY_PER_HOST - 1);
    const idsC = await make(c, JOB_HISTORY_PER_HOST + 5);

    await jobs.prune([a, b]);

    const left = async (hostId: number) => (await t!.prisma.job.findMany({ where: { hostId }, select: { id: true }, orderBy: { id: 'asc' } })).map((r) => r.id);
    expect(await left(a)).toEqual(idsA.slice(-JOB_HISTORY_PER_HOST));
    expect(await left(b)).toEqual(idsB);
    expect(await left(c)).toEqual(idsC);
  });

  it('writes last-seen times and generations of many hosts at once, leaving what a host has no news of', async () => {
    const { hostIds, jobs } = await hostsAndStore(['node-a', 'node-b']);
    const [a, b] = hostIds as [number, number];
    const seen = new Date('2026-12-02T10:11:12.345Z');
    await jobs.saveHostProgress(
      new Map([
        [a, { lastSeenAt: seen, desiredGeneration: 7, appliedGeneration: 5 }],
        [b, { desiredGeneration: 3 }],
      ]),
    );
    await jobs.saveHostProgress(new Map([[a, { appliedGeneration: 7 }]]));
    const rows = await t!.prisma.host.findMany({ where: { id: { in: [a, b] } }, orderBy: { id: 'asc' } });
    expect(rows.map((r) => ({ lastSeenAt: r.lastSeenAt?.toISOString() ?? null, desired: r.desiredGeneration, applied: r.appliedGeneration }))).toEqual([
      { lastSeenAt: seen.toISOString(), desired: 7, applied: 7 },
      { lastSeenAt: null, desired: 3, applied: 0 },
    ]);
    expect(await jobs.loadHostProgress()).toEqual(
      expect.arrayContaining([
        { id: a, desiredGeneration: 7, appliedGeneration: 7 },
        { id: b, desiredGeneration: 3, appliedGeneration: 0 },
      ]),
    );
  });
});
