// Runs one job: validates every command first (all or nothing), then runs them in phases,
// batched: every route in one `ip -batch`, every chain in one iptables-restore per table.
import {
  renderCommand,
  renderIpBatchLine,
  validateCommands,
  type Command,
  type CommandResult,
  type FirewallChain,
  type FirewallJump,
  type JobResultItem,
  type RouteDelete,
  type RouteReplace,
  type VxlanCommand,
} from '@crossdock/shared';
import { performance } from 'node:perf_hooks';
import { resultWithoutProcess, sealValidated } from './drivers/run.ts';
import type { Drivers } from './observe.ts';

export interface JobOptions {
  daemonJsonPath: string;
  /** argv that restarts the engine, or null when engine restarts are not allowed */
  engineRestartCommand: readonly string[] | null;
}

export type JobOutcome = { accepted: true; results: JobResultItem[] } | { accepted: false; error: string; results: [] };

// The order a job's commands run in, whatever order they came in.
const PHASES: ReadonlyArray<Command['kind']> = [
  'sysctl.set',
  'docker.daemon.bip',
  'docker.network.remove',
  'docker.network.create',
  'firewall.chain',
  'firewall.jump',
  // the device and the entries the VXLAN routes go through, before the routes
  'vxlan.device',
  'route.replace',
];

const VXLAN_KINDS = ['vxlan.device', 'vxlan.device.delete', 'neigh.replace', 'neigh.delete', 'fdb.replace', 'fdb.delete'] as const;

export async function runJob(raw: unknown[], drivers: Drivers, options: JobOptions): Promise<JobOutcome> {
  const checked = validateCommands(raw);
  if (!checked.ok) return { accepted: false, error: `${checked.error}; nothing in this job was run`, results: [] };
  const commands = checked.commands;
  // Frozen and remembered as valid: the drivers' own re-check skips them instead of doing it all again.
  sealValidated(commands);
  const results: JobResultItem[] = new Array(commands.length);
  const record = (index: number, result: CommandResult) => {
    results[index] = { index, text: renderCommand(commands[index]!), ...result };
  };
  const indexed = commands.map((command, index) => ({ command, index }));
  const ofKind = <K extends Command['kind']>(...kinds: K[]) =>
    indexed.filter((c): c is { command: Extract<Command, { kind: K }>; index: number } => (kinds as string[]).includes(c.command.kind));

  for (const phase of PHASES) {
    switch (phase) {
      case 'sysctl.set':
        for (const { command, index } of ofKind('sysctl.set')) record(index, await drivers.sysctl.write(command));
        break;
      case 'docker.daemon.bip':
        for (const { command, index } of ofKind('docker.daemon.bip')) {
          record(index, await drivers.docker.setBip(command, { daemonJsonPath: options.daemonJsonPath, restartCommand: options.engineRestartCommand }));
        }
        break;
      case 'docker.network.remove':
        for (const { command, index } of ofKind('docker.network.remove')) record(index, await drivers.docker.removeNetwork(command));
        break;
      case 'docker.network.create':
        for (const { command, index } of ofKind('docker.network.create')) record(index, await drivers.docker.createNetwork(command));
        break;
      case 'firewall.chain': {
        // Chains and their jumps together: one read of the tables, one iptables-restore per
        // table (chains before jumps within it), instead of a read and a process per jump.
        const chains = ofKind('firewall.chain');
        const jumps = ofKind('firewall.jump');
        if (chains.length === 0 && jumps.length === 0) break;
        const result = await drivers.iptables.applyFirewall(
          chains.map((c) => c.command as FirewallChain),
          jumps.map((j) => j.command as FirewallJump),
        );
        for (const { index } of chains) record(index, result.chains);
        for (const [i, { index }] of jumps.entries()) record(index, result.jumps[i]!);
        break;
      }
      case 'firewall.jump':
        break; // applied with the chains, above
      case 'vxlan.device': {
        const entries = ofKind(...VXLAN_KINDS);
        if (entries.length === 0) break;
        if (!drivers.vxlan) {
          const started = performance.now();
          for (const { index } of entries)
            record(index, resultWithoutProcess(false, '', 'this executor was started without its VXLAN driver; nothing was changed\n', started));
          break;
        }
        const outcome = await drivers.vxlan.apply(entries.map((e) => e.command as VxlanCommand));
        entries.forEach(({ index }, i) => {
          record(index, outcome[i]!);
        });
        break;
      }
      case 'route.replace': {
        const routes = ofKind('route.replace', 'route.delete');
        if (routes.length === 0) break;
        const result = await drivers.ip.applyRoutes(routes.map((r) => r.command as RouteReplace | RouteDelete));
        recordBatch(routes, result, record);
        break;
      }
    }
  }
  return { accepted: true, results };
}

/** One batch, one result per command: a command failed if the batch's stderr names its line. */
function recordBatch(
  routes: Array<{ command: RouteReplace | RouteDelete; index: number }>,
  batch: CommandResult,
  record: (index: number, result: CommandResult) => void,
): void {
  const stderrLines = batch.stderr.split('\n').filter(Boolean);
  const unexplained = !batch.ok && !stderrLines.some((l) => routes.some((r) => l.startsWith(`${renderIpBatchLine(r.command)}:`)));
  routes.forEach(({ command, index }, i) => {
    // Most batches print nothing: then no command has lines of its own to look for.
    const own = stderrLines.length === 0 ? [] : stderrLines.filter((l) => l.startsWith(`${renderIpBatchLine(command)}:`));
    record(index, {
      ok: unexplained ? false : own.length === 0,
      exitCode: batch.exitCode,
      // The batch's summary once, on its first command; every command shares its duration.
      stdout: i === 0 ? batch.stdout : '',
      stderr: unexplained ? batch.stderr : own.map((l) => `${l}\n`).join(''),
      durationMs: batch.durationMs,
    });
  });
}
