import type { Command } from 'commander';
import type { Host, Items } from '../api-types.ts';
import type { ApiClient } from '../client.ts';
import { CliError } from '../errors.ts';
import { formatAge, type Output } from '../output.ts';
import { act, leaf, type Context } from '../program.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function generationCell(out: Output, g: { desired: number; applied: number }): string {
  const text = `${g.applied}/${g.desired}`;
  return g.applied < g.desired ? out.paint('yellow', text) : text;
}

function parseLabels(pairs: string[] = []): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new CliError('USAGE', `label ${JSON.stringify(pair)} is not KEY=VALUE; use something like --label rack=r1`);
    labels[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return labels;
}

function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}

/**
 * The token, once, and the exact line that puts the executor on that host: the controller's
 * join line (the one-file executor's install) where it gives one, and the checkout's way.
 */
function printJoin(out: Output, client: ApiClient, name: string, token: string, join: string | undefined, caFingerprint: string | null | undefined): void {
  const args = `--controller ${client.leader} --token ${token}${caFingerprint ? ` --ca-fingerprint ${caFingerprint}` : ''}`;
  out.line(`token for ${name} (shown once; the controller keeps only its hash):`);
  out.line(`  ${token}`);
  if (join) {
    out.line(`on ${name}, as root, where executor/dist/crossdock-executor.mjs was copied, run:`);
    out.line(`  ${join}`);
    out.line(`  (or from a checkout there: npm run executor -- ${args})`);
  } else {
    out.line(`on ${name}, as root, run the executor with it:`);
    out.line(`  crossdock-executor ${args}`);
    out.line(`  (or from a checkout there: npm run executor -- ${args})`);
  }
  if (isLoopback(client.leader)) {
    out.line(out.paint('yellow', `note: ${client.leader} is this machine's loopback; on ${name}, use an address of the controller that ${name} can reach`));
  }
}

export function registerHosts(program: Command, ctx: Context): void {
  const hosts = program
    .command('hosts')
    .description('the Docker hosts crossdock routes between (default: ls)')
    .addHelpText('after', '\nExamples:\n  $ crossdock hosts\n  $ crossdock hosts add node-1 192.168.32.20');

  leaf(hosts, 'ls', 'list hosts: status, generation (applied/desired), subnets', ['crossdock hosts ls'], { isDefault: true }).action(
    act(async (_options: unknown, command: Command) => {
      const response = await ctx.client(command).call('GET', '/v1/hosts');
      if (ctx.json(command)) return ctx.printJson(response);
      const { out } = ctx;
      out.table(
        ['NAME', 'ADDRESS', 'INTERFACE', 'STATUS', 'GENERATION', 'SUBNETS', 'LAST SEEN'],
        (response.body as Items<Host>).items.map((h) => [
          h.name,
          h.address,
          h.interface,
          out.status(h.status),
          generationCell(out, h.generation),
          h.subnets.map((s) => s.cidr).join(',') || '-',
          formatAge(h.lastSeenAt),
        ]),
      );
    }),
  );

  leaf(hosts, 'show <name>', 'show a host with its subnets and labels', ['crossdock hosts show node-1']).action(
    act(async (name: string, _options: unknown, command: Command) => {
      const response = await ctx.client(command).call('GET', `/v1/hosts/${encodeURIComponent(name)}`);
      if (ctx.json(command)) return ctx.printJson(response);
      const h = response.body as Host;
      const { out } = ctx;
      out.fields([
        ['name', h.name],
        ['address', `${h.address} on ${h.interface}`],
        ['status', `${out.status(h.status)} (last seen ${formatAge(h.lastSeenAt)})`],
        ['generation', `${generationCell(out, h.generation)} applied/desired${h.generation.applied < h.generation.desired ? ' (behind)' : ''}`],
        [
          'labels',
          Object.entries(h.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ') || '-',
        ],
        ['registered', h.createdAt],
      ]);
      if (h.subnets.length > 0) {
        out.line();
        out.table(
          ['SUBNET', 'ID', 'GATEWAY', 'POOL', 'NETWORK', 'MODE'],
          h.subnets.map((s) => [s.cidr, String(s.id), s.gateway, s.pool, s.network, s.mode]),
        );
      }
    }),
  );

  leaf(hosts, 'add <name> <address>', 'register a host (and allocate its first subnet); prints its token once', [
    'crossdock hosts add node-1 192.168.32.20',
    'crossdock hosts add node-2 192.168.32.21 --interface ens3 --pool edge --label rack=r1',
  ])
    .option('--interface <name>', 'the interface that address is on (default eth0)')
    .option('--pool <name>', 'pool of the first subnet (default: the default pool)')
    .option('--label <key=value>', 'a label (repeat for more)', collect)
    .option('--no-allocate', 'register without a first subnet')
    .action(
      act(async (name: string, address: string, options: { interface?: string; pool?: string; label?: string[]; allocate: boolean }, command: Command) => {
        const client = ctx.client(command);
        const body = {
          name,
          address,
          interface: options.interface,
          pool: options.pool,
          labels: options.label ? parseLabels(options.label) : undefined,
          allocate: options.allocate ? undefined : false,
        };
        const response = await client.call('POST', '/v1/hosts', body);
        if (ctx.json(command)) return ctx.printJson(response);
        const { host, token, join, caFingerprint } = response.body as { host: Host; token: string; join?: string; caFingerprint?: string | null };
        const subnets = host.subnets.map((s) => `${s.cidr} (pool ${s.pool})`).join(', ');
        ctx.out.line(`host ${host.name} registered at ${host.address} on ${host.interface}${subnets ? `, subnet ${subnets}` : ', no subnet yet'}`);
        printJoin(ctx.out, client, host.name, token, join, caFingerprint);
      }),
    );

  leaf(hosts, 'rm <name>', "delete a host: its subnets are released and every peer's routes to them removed", ['crossdock hosts rm node-1']).action(
    act(async (name: string, _options: unknown, command: Command) => {
      const response = await ctx.client(command).call('DELETE', `/v1/hosts/${encodeURIComponent(name)}`);
      if (ctx.json(command)) return ctx.printJson(response);
      ctx.out.line(`host ${name} deleted; its executor cleans up and exits`);
    }),
  );

  leaf(hosts, 'token <name>', 'issue a new token for a host (the old one stops working); prints it once', ['crossdock hosts token node-1']).action(
    act(async (name: string, _options: unknown, command: Command) => {
      const client = ctx.client(command);
      const response = await client.call('POST', `/v1/hosts/${encodeURIComponent(name)}/token`);
      if (ctx.json(command)) return ctx.printJson(response);
      const { token, join, caFingerprint } = response.body as { token: string; join?: string; caFingerprint?: string | null };
      printJoin(ctx.out, client, name, token, join, caFingerprint);
    }),
  );
}
