import type { Command } from 'commander';
import type { Plan } from '../api-types.ts';
import { act, leaf, type Context } from '../program.ts';

export function registerPlan(program: Command, ctx: Context): void {
  leaf(program, 'plan <host>', 'what the host would run now (a dry run), as the commands you would type', ['crossdock plan node-1']).action(
    act(async (host: string, _options: unknown, command: Command) => {
      const response = await ctx.client(command).call('GET', `/v1/hosts/${encodeURIComponent(host)}/plan`);
      if (ctx.json(command)) return ctx.printJson(response);
      const plan = response.body as Plan;
      const { out } = ctx;
      const against = plan.observed === 'snapshot' ? "its executor's snapshot taken now" : 'an empty host (no executor is attached)';
      out.line(out.paint('dim', `# ${host} at generation ${plan.generation}, diffed against ${against}`));
      if (plan.commands.length === 0) out.line(out.paint('dim', `# nothing to do: ${host} has what it should`));
      else out.line(plan.script);
      for (const s of plan.skipped) out.line(out.paint('yellow', `# left alone (no valid command can name it; fix by hand): ${s}`));
    }),
  );
}
