import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { renderCommand, type Command } from '@crossdock/shared';
import type { StoredResult } from '../../../agents/jobs.ts';
import { notFound } from '../../../errors.ts';
import { IdParams, commonErrors, itemsOf } from '../../../schemas.ts';

const JobStatus = Type.Union(['pending', 'running', 'succeeded', 'failed', 'timeout'].map((s) => Type.Literal(s)));

export const JobSummary = Type.Object({
  id: Type.Integer(),
  host: Type.String(),
  generation: Type.Integer(),
  status: JobStatus,
  reason: Type.String(),
  commandCount: Type.Integer(),
  error: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const JobResult = Type.Object({
  command: Type.Unknown(),
  text: Type.String({ description: 'the command as an operator would type it' }),
  ok: Type.Union([Type.Boolean(), Type.Null()]),
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  stdout: Type.String(),
  stderr: Type.String(),
  durationMs: Type.Union([Type.Number(), Type.Null()]),
});

const JobDetail = Type.Composite([JobSummary, Type.Object({ results: Type.Array(JobResult) })]);

const MAX_LIMIT = 1000;

type SummaryRow = {
  id: number;
  generation: number;
  status: string;
  reason: string;
  commandCount: number;
  error: string | null;
  createdAt: Date;
  finishedAt: Date | null;
  host: { name: string };
};

/** What a listing reads: never the commands or results, which can be megabytes per job. */
export const summarySelect = {
  id: true,
  generation: true,
  status: true,
  reason: true,
  commandCount: true,
  error: true,
  createdAt: true,
  finishedAt: true,
  host: { select: { name: true } },
} as const;

export function summary(row: SummaryRow) {
  return {
    id: row.id,
    host: row.host.name,
    generation: row.generation,
    status: row.status as 'pending',
    reason: row.reason,
    commandCount: row.commandCount,
    error: row.error,
    createdAt: row.createdAt.toISOString(),
    finishedAt: row.finishedAt?.toISOString() ?? null,
  };
}

const jobs: FastifyPluginAsyncTypebox = async (app) => {
  const { prisma, ipam } = app;

  app.get(
    '/',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Job history, newest first',
        querystring: Type.Object(
          {
            host: Type.Optional(Type.String()),
            status: Type.Optional(JobStatus),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT, default: 50 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: itemsOf(JobSummary), ...commonErrors },
      },
    },
    async (request) => {
      const { host, status, limit = 50 } = request.query;
      const hostId = host === undefined ? undefined : ipam.hostIdByName(host);
      if (host !== undefined && hostId === undefined) throw notFound.host(host);
      const rows = await prisma.job.findMany({ where: { hostId, status }, orderBy: { id: 'desc' }, take: limit, select: summarySelect });
      return { items: rows.map(summary) };
    },
  );

  app.get(
    '/:id',
    { schema: { tags: ['jobs'], summary: 'One job with its per-command results', params: IdParams, response: { 200: JobDetail, ...commonErrors } } },
    async (request) => {
      const row = await prisma.job.findUnique({ where: { id: request.params.id }, include: { host: { select: { name: true } } } });
      if (!row) throw notFound.job(request.params.id);
      const commands = JSON.parse(row.commands) as Command[];
      const results = row.results ? (JSON.parse(row.results) as StoredResult[]) : [];
      const byIndex = new Map(results.map((r) => [r.index, r]));
      return {
        ...summary(row),
        results: commands.map((command, index) => {
          const r = byIndex.get(index);
          return {
            command,
            // Rendered here from the stored command, never the executor's text: a host cannot
            // put words in an operator's job history.
            text: renderCommand(command),
            ok: r ? r.ok : null,
            exitCode: r?.exitCode ?? null,
            stdout: r?.stdout ?? '',
            stderr: r?.stderr ?? '',
            durationMs: r?.durationMs ?? null,
          };
        }),
      };
    },
  );
};

export default jobs;
