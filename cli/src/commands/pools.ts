import type { Command } from 'commander';
import type { Items, Pool } from '../api-types.ts';
import { act, leaf, parsePositiveInteger, type Context } from '../program.ts';
import type { Output } from '../output.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function percent(part: number, total: number): string {
  return total === 0 ? '0%' : `${((100 * part) / total).toFixed(part === total || part === 0 ? 0 : 1)}%`;
}

/** Allocated share of the usable blocks, red from 90%, yellow from 75%. */
export function utilizationCell(out: Output, u: { total: number; allocated: number; reserved: number }): string {
  const usable = u.total - u.reserved;
  const share = usable === 0 ? 1 : u.allocated / usable;
  return out.paint(share >= 0.9 ? 'red' : share >= 0.75 ? 'yellow' : undefined, percent(u.allocated, usable));
}

export function registerPools(program: Command, ctx: Context): void {
  const pools = program
    .command('pools')
    .description('address pools subnets are allocated from (default: ls)')
    .addHelpText('after', '\nExamples:\n  $ crossdock pools\n  $ crossdock pools create edge 10.9.0.0/16');

  leaf(pools, 'ls', 'list pools with their utilization', ['crossdock pools ls'], { isDefault: true }).action(
    act(async (_options: unknown, command: Command) => {
      const client = ctx.client(command);
      const response = await client.call('GET', '/v1/pools');
      if (ctx.json(command)) return ctx.printJson(response);
      const items = (response.body as Items<Pool>).items;
      const detailed = await Promise.all(items.map(async (p) => (await client.call('GET', `/v1/pools/${encodeURIComponent(p.name)}`)).body as Pool));
      const { out } = ctx;
      out.table(
        ['NAME', 'CIDR', 'SUBNETS', 'USED', 'ALLOCATED', 'FREE', 'RESERVED', 'ALLOW FROM'],
        detailed.map((p) => {
          const u = p.utilization!;
          return [
            p.name,
            p.cidr,
            `/${p.subnetPrefixLength}`,
            utilizationCell(out, u),
            String(u.allocated),
            String(u.free),
            String(u.reserved),
            p.allowFrom.join(',') || '-',
          ];
        }),
      );
    }),
  );

  leaf(pools, 'show <name>', 'show a pool: ranges, utilization, the next free subnets', ['crossdock pools show default']).action(
    act(async (name: string, _options: unknown, command: Command) => {
      const client = ctx.client(command);
      const response = await client.call('GET', `/v1/pools/${encodeURIComponent(name)}`);
      if (ctx.json(command)) return ctx.printJson(response);
      const p = response.body as Pool;
      const u = p.utilization!;
      const next = (await client.call('GET', `/v1/pools/${encodeURIComponent(name)}/available?limit=3`)).body as { items: string[] };
      ctx.out.fields([
        ['name', p.name],
        ['cidr', p.cidr],
        ['subnet size', `/${p.subnetPrefixLength}`],
        ['reserved', p.reserved.join(', ') || '-'],
        ['allow from', p.allowFrom.join(', ') || '-'],
        ['utilization', `${utilizationCell(ctx.out, u)} of the usable blocks: ${u.allocated} allocated, ${u.free} free, ${u.reserved} reserved, of ${u.total}`],
        ['next free', next.items.join(', ') || 'none (the pool is full)'],
        ['created', p.createdAt],
      ]);
    }),
  );

  leaf(pools, 'create <name> <cidr>', 'create a pool', [
    'crossdock pools create edge 10.9.0.0/16',
    'crossdock pools create lab 10.1.0.0/16 --subnet-prefix-length 26 --reserved 10.1.0.0/24',
  ])
    .option('--subnet-prefix-length <n>', 'size of the subnets handed out (default 24)', parsePositiveInteger('--subnet-prefix-length', 32))
    .option('--reserved <cidr>', 'a range never allocated (repeat for more)', collect)
    .option('--allow-from <cidr>', "an outside network that may reach the pool's containers (repeat for more)", collect)
    .action(
      act(async (name: string, cidr: string, options: { subnetPrefixLength?: number; reserved?: string[]; allowFrom?: string[] }, command: Command) => {
        const body = { name, cidr, subnetPrefixLength: options.subnetPrefixLength, reserved: options.reserved, allowFrom: options.allowFrom };
        const response = await ctx.client(command).call('POST', '/v1/pools', body);
        if (ctx.json(command)) return ctx.printJson(response);
        const p = response.body as Pool;
        ctx.out.line(`pool ${p.name} created: ${p.cidr}, /${p.subnetPrefixLength} subnets${p.reserved.length ? `, reserving ${p.reserved.join(', ')}` : ''}`);
      }),
    );

  leaf(pools, 'rm <name>', 'delete an empty pool', ['crossdock pools rm edge']).action(
    act(async (name: string, _options: unknown, command: Command) => {
      const response = await ctx.client(command).call('DELETE', `/v1/pools/${encodeURIComponent(name)}`);
      if (ctx.json(command)) return ctx.printJson(response);
      ctx.out.line(`pool ${name} deleted`);
    }),
  );
}
