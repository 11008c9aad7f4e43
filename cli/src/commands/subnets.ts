import { Option, type Command } from 'commander';
import type { Items, Subnet } from '../api-types.ts';
import { act, leaf, parsePositiveInteger, type Context } from '../program.ts';

export function registerSubnets(program: Command, ctx: Context): void {
  const subnets = program
    .command('subnets')
    .description("the hosts' container subnets (default: ls)")
    .addHelpText('after', '\nExamples:\n  $ crossdock subnets --host node-1\n  $ crossdock subnets alloc node-1 --network backend');

  leaf(subnets, 'ls', 'list subnets', ['crossdock subnets ls --host node-1'], { isDefault: true })
    .option('--host <name>', "only this host's")
    .option('--pool <name>', "only this pool's")
    .action(
      act(async (options: { host?: string; pool?: string }, command: Command) => {
        const query = new URLSearchParams();
        if (options.host !== undefined) query.set('host', options.host);
        if (options.pool !== undefined) query.set('pool', options.pool);
        const response = await ctx.client(command).call('GET', `/v1/subnets${query.size ? `?${query}` : ''}`);
        if (ctx.json(command)) return ctx.printJson(response);
        ctx.out.table(
          ['ID', 'CIDR', 'GATEWAY', 'HOST', 'POOL', 'NETWORK', 'MODE'],
          (response.body as Items<Subnet>).items.map((s) => [String(s.id), s.cidr, s.gateway, s.host, s.pool, s.network, s.mode]),
        );
      }),
    );

  leaf(subnets, 'alloc <host>', 'allocate a subnet to a host (the lowest free one, or the one you name)', [
    'crossdock subnets alloc node-1 --network backend',
    'crossdock subnets alloc node-2 --cidr 10.100.40.0/24 --gateway 10.100.40.254',
  ])
    .option('--pool <name>', 'pool to allocate from (default: the pool containing --cidr, else the default pool)')
    .option('--prefix-length <n>', "subnet size (default: the pool's)", parsePositiveInteger('--prefix-length', 32))
    .option('--cidr <cidr>', 'this exact block')
    .option('--gateway <address>', 'gateway address (default: the first host address)')
    .option('--network <name>', 'Docker network name on the host (default crossdock)')
    .addOption(new Option('--mode <mode>', 'a Docker network, or the engine default bridge (bip)').choices(['network', 'bip']))
    .action(
      act(
        async (
          host: string,
          options: { pool?: string; prefixLength?: number; cidr?: string; gateway?: string; network?: string; mode?: 'network' | 'bip' },
          command,
        ) => {
          const { pool, prefixLength, cidr, gateway, network, mode } = options;
          const response = await ctx.client(command).call('POST', '/v1/subnets', { host, pool, prefixLength, cidr, gateway, network, mode });
          if (ctx.json(command)) return ctx.printJson(response);
          const s = response.body as Subnet;
          ctx.out.line(
            `subnet ${s.id} allocated: ${s.cidr} (gateway ${s.gateway}) to ${s.host}, network ${s.network}${s.mode === 'bip' ? ' (bip)' : ''}, pool ${s.pool}`,
          );
        },
      ),
    );

  leaf(subnets, 'rm', "release a subnet: its host's network and every peer's route to it are removed", ['crossdock subnets rm 12'])
    .argument('<id>', 'the subnet id (subnets ls shows it)', parsePositiveInteger('the subnet id'))
    .action(
      act(async (parsed: number, _options: unknown, command: Command) => {
        const response = await ctx.client(command).call('DELETE', `/v1/subnets/${parsed}`);
        if (ctx.json(command)) return ctx.printJson(response);
        ctx.out.line(`subnet ${parsed} released`);
      }),
    );
}
