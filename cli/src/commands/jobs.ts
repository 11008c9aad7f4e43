import { Option, type Command } from 'commander';
import type { Items, JobDetail, JobSummary } from '../api-types.ts';
import { formatAge, formatDuration } from '../output.ts';
import { act, leaf, parsePositiveInteger, type Context } from '../program.ts';

export const JOB_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'timeout'];

export function jobDuration(job: JobSummary): string {
  return job.finishedAt ? formatDuration(Date.parse(job.finishedAt) - Date.parse(job.createdAt)) : '-';
}

function indent(label: string, text: string): string[] {
  const lines = text.replace(/\n$/, '').split('\n');
  return [`    ${label}: ${lines[0]}`, ...lines.slice(1).map((l) => `    ${' '.repeat(label.length + 2)}${l}`)];
}

export function registerJobs(program: Command, ctx: Context): void {
  const jobs = leaf(program, 'jobs', 'job history, newest first (each job: what one host was sent and how it went)', [
    'crossdock jobs --host node-1 --status failed',
    'crossdock jobs show 42',
  ])
    .option('--host <name>', "only this host's jobs")
    .addOption(new Option('--status <status>', 'only jobs with this status').choices(JOB_STATUSES))
    .option('--limit <n>', 'at most this many (default 50, at most 1000)', parsePositiveInteger('--limit', 1000))
    .action(
      act(async (options: { host?: string; status?: string; limit?: number }, command: Command) => {
        const query = new URLSearchParams();
        if (options.host !== undefined) query.set('host', options.host);
        if (options.status !== undefined) query.set('status', options.status);
        if (options.limit !== undefined) query.set('limit', String(options.limit));
        const response = await ctx.client(command).call('GET', `/v1/jobs${query.size ? `?${query}` : ''}`);
        if (ctx.json(command)) return ctx.printJson(response);
        const { out } = ctx;
        out.table(
          ['ID', 'HOST', 'GEN', 'STATUS', 'COMMANDS', 'CREATED', 'DURATION', 'REASON'],
          (response.body as Items<JobSummary>).items.map((j) => [
            String(j.id),
            j.host,
            String(j.generation),
            out.status(j.status),
            String(j.commandCount),
            formatAge(j.createdAt),
            jobDuration(j),
            j.reason,
          ]),
        );
      }),
    );

  leaf(jobs, 'show', 'one job: each command as you would type it, with its exit code, stdout, stderr and duration', ['crossdock jobs show 42'])
    .argument('<id>', 'the job id (jobs lists them)', parsePositiveInteger('the job id'))
    .action(
      act(async (id: number, _options: unknown, command: Command) => {
        const response = await ctx.client(command).call('GET', `/v1/jobs/${id}`);
        if (ctx.json(command)) return ctx.printJson(response);
        const job = response.body as JobDetail;
        const { out } = ctx;
        out.fields([
          ['job', String(job.id)],
          ['host', job.host],
          ['generation', String(job.generation)],
          ['status', out.status(job.status)],
          ['reason', job.reason],
          ['created', job.createdAt],
          ['finished', job.finishedAt ?? '-'],
          ['duration', jobDuration(job)],
          ...(job.error ? ([['error', out.paint('red', job.error)]] as Array<[string, string]>) : []),
        ]);
        job.results.forEach((r, i) => {
          const state = r.ok === null ? out.paint('yellow', 'not run') : r.ok ? out.paint('green', 'ok') : out.paint('red', 'failed');
          const exit = r.exitCode === null ? 'exit -' : `exit ${r.exitCode}`;
          const took = r.durationMs === null ? '' : `  ${formatDuration(r.durationMs)}`;
          out.line();
          out.line(`[${i + 1}/${job.results.length}] ${state}  ${exit}${took}`);
          for (const line of r.text.split('\n')) out.line(`    ${line}`);
          if (r.stdout) for (const line of indent('stdout', r.stdout)) out.line(line);
          if (r.stderr) for (const line of indent('stderr', r.stderr)) out.line(out.paint('red', line));
        });
      }),
    );
}
