import type { Command } from 'commander';
import type { FleetStatus } from '../api-types.ts';
import { formatAge, formatDuration } from '../output.ts';
import { act, leaf, type Context } from '../program.ts';
import { generationCell } from './hosts.ts';
import { jobDuration } from './jobs.ts';
import { utilizationCell } from './pools.ts';

/** Hosts behind shown by name on the status screen; the counts cover the rest. */
const BEHIND_SHOWN = 10;

export function registerStatus(program: Command, ctx: Context): void {
  leaf(program, 'status', 'the fleet on one screen: controller, hosts, pools, hosts behind, recent failed jobs', ['crossdock status']).action(
    act(async (_options: unknown, command: Command) => {
      const client = ctx.client(command);
      const response = await client.call('GET', '/v1/status');
      if (ctx.json(command)) return ctx.printJson(response);
      const s = response.body as FleetStatus;
      // /healthz names the controller's role where it has standbys; older controllers do not say.
      const health = (await client.send('GET', '/healthz')).body as { role?: string } | undefined;
      const { out } = ctx;
      const storage =
        s.controller.storage.status === 'ok' ? out.status('ok') : `${out.status('unwritable')} (${s.controller.storage.reason ?? s.controller.storage.code})`;
      out.fields([
        [
          'controller',
          `${client.leader}${health?.role ? ` (${health.role})` : ''}, version ${s.controller.version}, up ${formatDuration(Date.now() - Date.parse(s.controller.startedAt))}, storage ${storage}`,
        ],
        [
          'hosts',
          `${s.hosts.total} registered: ${out.paint('green', `${s.hosts.online} online`)}, ${out.paint(s.hosts.offline ? 'red' : undefined, `${s.hosts.offline} offline`)}, ${s.hosts.pending} pending (executors: ${s.sessions.websocket} websocket, ${s.sessions.polling} polling)`,
        ],
      ]);

      const behind = s.behind.counts;
      const behindTotal = behind.online + behind.offline + behind.pending;
      out.line();
      if (behindTotal === 0) out.line(`behind: none; every host applied its desired generation`);
      else {
        out.line(
          `behind: ${out.paint(behind.online ? 'yellow' : undefined, `${behind.online} online`)}, ${behind.offline} offline, ${behind.pending} pending host(s) below their desired generation`,
        );
        const shown = s.behind.hosts.slice(0, BEHIND_SHOWN);
        out.table(
          ['HOST', 'STATUS', 'GENERATION'],
          shown.map((h) => [h.name, out.status(h.status), generationCell(out, h.generation)]),
        );
        if (behindTotal > shown.length) out.line(out.paint('dim', `... and ${behindTotal - shown.length} more`));
      }

      out.line();
      if (s.pools.length === 0) out.line('pools: none (crossdock pools create NAME CIDR)');
      else {
        out.table(
          ['POOL', 'USED', 'ALLOCATED', 'FREE', 'RESERVED', 'BLOCKS'],
          s.pools.map((p) => {
            const u = p.utilization;
            return [p.name, utilizationCell(out, u), String(u.allocated), String(u.free), String(u.reserved), String(u.total)];
          }),
        );
      }

      out.line();
      if (s.failedJobs.length === 0) out.line('failed jobs: none recently');
      else {
        out.table(
          ['FAILED JOB', 'HOST', 'STATUS', 'WHEN', 'DURATION', 'REASON', 'ERROR'],
          s.failedJobs.map((j) => [String(j.id), j.host, out.status(j.status), formatAge(j.createdAt), jobDuration(j), j.reason, j.error ?? '-']),
        );
      }
    }),
  );
}
