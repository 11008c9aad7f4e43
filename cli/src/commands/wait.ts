import { InvalidArgumentError, type Command } from 'commander';
import type { FleetStatus } from '../api-types.ts';
import type { ApiResponse } from '../client.ts';
import { CliError } from '../errors.ts';
import { formatDuration, parseDuration } from '../output.ts';
import { act, leaf, type Context } from '../program.ts';

/** How often wait asks; GET /v1/status costs the controller a walk of its in-memory hosts. */
export const WAIT_POLL_INTERVAL_MS = 500;
const DEFAULT_TIMEOUT = '60s';
/** Hosts named in the progress line and the timeout message. */
const NAMED = 10;

function parseTimeout(text: string): number {
  const ms = parseDuration(text);
  if (ms === null || ms <= 0) throw new InvalidArgumentError('use a duration such as 60s, 2m, 1m30s or 500ms');
  return ms;
}

function onlineBehind(s: FleetStatus) {
  return s.behind.hosts.filter((h) => h.status === 'online');
}

function names(s: FleetStatus, withGeneration: boolean): string {
  const listed = onlineBehind(s).slice(0, NAMED);
  const text = listed.map((h) => (withGeneration ? `${h.name} (applied ${h.generation.applied} of ${h.generation.desired})` : h.name)).join(', ');
  const more = s.behind.counts.online - listed.length;
  return more > 0 ? `${text} and ${more} more` : text;
}

export function registerWait(program: Command, ctx: Context): void {
  leaf(program, 'wait', 'wait until every online host has applied its desired generation', ['crossdock subnets alloc node-1 && crossdock wait --timeout 2m'])
    .option('--timeout <duration>', `give up after this long, naming the hosts still behind (default ${DEFAULT_TIMEOUT})`, parseTimeout)
    .addHelpText('after', '\nHosts that are offline or have never connected are not waited for (`crossdock status` lists them).')
    .action(
      act(async (options: { timeout?: number }, command: Command) => {
        const client = ctx.client(command);
        const timeoutMs = options.timeout ?? parseTimeout(DEFAULT_TIMEOUT);
        const started = Date.now();
        const progress = ctx.stderrIsTTY && !ctx.json(command);
        const clear = () => progress && ctx.streams.stderr.write('\r\u001b[K');
        let response: ApiResponse;
        let status: FleetStatus;
        for (;;) {
          response = await client.call('GET', '/v1/status');
          status = response.body as FleetStatus;
          const elapsed = Date.now() - started;
          if (status.behind.counts.online === 0) break;
          if (elapsed >= timeoutMs) {
            clear();
            throw new CliError(
              'WAIT_TIMEOUT',
              `after ${formatDuration(timeoutMs)}, ${status.behind.counts.online} of ${status.hosts.online} online host(s) have not applied their desired generation: ${names(status, true)}`,
            );
          }
          if (progress) {
            ctx.streams.stderr.write(
              `\r\u001b[Kwaiting ${formatDuration(elapsed)}: ${status.hosts.online - status.behind.counts.online} of ${status.hosts.online} online hosts applied their generation; behind: ${names(status, false)}`,
            );
          }
          await new Promise((resolve) => setTimeout(resolve, Math.min(WAIT_POLL_INTERVAL_MS, timeoutMs - elapsed)));
        }
        clear();
        if (ctx.json(command)) return ctx.printJson(response);
        const n = status.hosts.online;
        ctx.out.line(
          n === 0
            ? 'no host is online: nothing to wait for'
            : `all ${n} online host${n === 1 ? '' : 's'} applied their desired generation (${formatDuration(Date.now() - started)})`,
        );
      }),
    );
}
