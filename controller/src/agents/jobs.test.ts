import { afterEach, describe, expect, it } from 'vitest';
import { createTestApp } from '../test-support.ts';
import { JobStore } from './jobs.ts';

describe('JobStore', () => {
  let t: Awaited<ReturnType<typeof createTestApp>> | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('times out a fan-out larger than one statement may bind, and only jobs still waiting', async () => {
    t = await createTestApp();
    const registered = await t.app.inject({ method: 'POST', url: '/v1/hosts', headers: t.auth, payload: { name: 'node-a', address: '198.51.100.11' } });
    const hostId = registered.json().host.id as number;
    const jobs = new JobStore(t.prisma, t.ipam.writer);
    const ids = await jobs.create(
      Array.from({ length: 1_200 }, (_, i) => ({ hostId, generation: i + 1, reason: 'test', commands: [], status: 'running' as const })),
    );
    expect(ids).toHaveLength(1_200);
    await jobs.finish(ids[0]!, { status: 'succeeded', results: [] });
    const timedOut: number[][] = [];
    jobs.events.on('timedOut', (batch) => timedOut.push(batch));

    await jobs.timeOut(ids, 'the executor reconnected');

    expect(timedOut).toEqual([ids]);
    const byStatus = await t.prisma.job.groupBy({ by: ['status'], _count: true, where: { hostId } });
    expect(Object.fromEntries(byStatus.map((g) => [g.status, g._count]))).toEqual({ succeeded: 1, timeout: 1_199 });
    const sample = await t.prisma.job.findUniqueOrThrow({ where: { id: ids[1_100]! } });
    expect(sample.error).toBe('the executor reconnected');
  });
});
