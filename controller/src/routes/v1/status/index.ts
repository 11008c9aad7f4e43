// GET /v1/status: the fleet on one screen (what `crossdock status` and `crossdock wait` read),
// from memory but for the few newest failed jobs, so it stays cheap at 10,000 hosts.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { HostStatus, Utilization, commonErrors } from '../../../schemas.ts';
import { JobSummary, summary, summarySelect } from '../jobs/index.ts';

/** Hosts behind listed by name (online ones first); the counts cover all of them. */
export const MAX_BEHIND_LISTED = 100;
const FAILED_JOBS_LISTED = 10;

const Counts = Type.Object({ pending: Type.Integer(), online: Type.Integer(), offline: Type.Integer() });

export const FleetStatusBody = Type.Object({
  controller: Type.Object({
    version: Type.String(),
    startedAt: Type.String({ format: 'date-time' }),
    storage: Type.Object({
      status: Type.String({ description: 'ok, or unwritable (see /healthz)' }),
      code: Type.Optional(Type.String()),
      reason: Type.Optional(Type.String()),
      since: Type.Optional(Type.String()),
    }),
  }),
  hosts: Type.Composite([Type.Object({ total: Type.Integer() }), Counts]),
  behind: Type.Object({
    counts: Counts,
    hosts: Type.Array(Type.Object({ name: Type.String(), status: HostStatus, generation: Type.Object({ desired: Type.Integer(), applied: Type.Integer() }) }), {
      description: `hosts whose applied generation is below their desired one: online first, then by name; at most ${MAX_BEHIND_LISTED}`,
    }),
  }),
  sessions: Type.Object({ websocket: Type.Integer(), polling: Type.Integer() }),
  pools: Type.Array(Type.Object({ name: Type.String(), utilization: Utilization })),
  failedJobs: Type.Array(JobSummary, { description: `the ${FAILED_JOBS_LISTED} newest jobs that failed or timed out` }),
});

const status: FastifyPluginAsyncTypebox<{ version: string }> = async (app, options) => {
  const startedAt = new Date().toISOString();
  app.get(
    '/',
    {
      schema: {
        tags: ['status'],
        summary: 'The fleet at a glance',
        description:
          'Hosts by status, hosts behind on their generation, executor sessions, pool utilization and the newest failed jobs. Answers after every change accepted before the request has been planned, so a client that just changed something sees its generations move.',
        response: { 200: FleetStatusBody, ...commonErrors },
      },
    },
    async () => {
      await app.agents.reconciler.idle();
      const fleet = app.fleetStatus.summary();
      const counts = { pending: 0, online: 0, offline: 0 };
      for (const h of fleet.behind) counts[h.status]++;
      const listed = [...fleet.behind.filter((h) => h.status === 'online'), ...fleet.behind.filter((h) => h.status !== 'online')].slice(0, MAX_BEHIND_LISTED);
      const failed = await app.prisma.job.findMany({
        where: { status: { in: ['failed', 'timeout'] } },
        orderBy: { id: 'desc' },
        take: FAILED_JOBS_LISTED,
        select: summarySelect,
      });
      return {
        controller: { version: options.version, startedAt, storage: app.ipam.writer.storage.state() },
        hosts: fleet.hosts,
        behind: { counts, hosts: listed },
        sessions: fleet.sessions,
        pools: fleet.pools.map(({ name, ...utilization }) => ({ name, utilization })),
        failedJobs: failed.map(summary),
      };
    },
  );
};

export default status;
