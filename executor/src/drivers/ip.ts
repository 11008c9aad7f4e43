// Routes and interfaces through iproute2. Every route crossdock makes carries protocol 252, and
// only such routes are ever replaced or deleted: a delete names the protocol, and a replace
// that would overwrite someone else's route to the same destination is refused.
import { performance } from 'node:perf_hooks';
import { CROSSDOCK_ROUTE_PROTOCOL, renderIpBatch, renderIpBatchLine, type CommandResult, type RouteDelete, type RouteReplace } from '@crossdock/shared';
import { firstInvalid, resolveRunner, resultWithoutProcess, type DriverOptions } from './run.ts';
import { watchProcess, type OnChange, type Watch } from './watch.ts';

export type RouteCommand = RouteReplace | RouteDelete;

export interface ObservedRoute {
  dst: string;
  /** null for a route without a gateway (not one crossdock makes, but it may carry our protocol) */
  via: string | null;
  dev: string;
}

export interface ObservedInterface {
  name: string;
  mtu: number;
  /** IPv4 addresses as address/prefix, such as 198.51.100.11/24 */
  addresses: string[];
}

export interface IpDriver {
  /** Routes in the main table tagged with crossdock's protocol. */
  observeRoutes(): Promise<ObservedRoute[]>;
  /** All commands in one `ip -batch`; deleting a route that is already gone is not an error. */
  applyRoutes(commands: readonly RouteCommand[]): Promise<CommandResult>;
  observeInterfaces(): Promise<ObservedInterface[]>;
  /** Calls onChange when a route of crossdock's protocol is added, changed or deleted, by anyone. */
  watch(onChange: OnChange): Watch;
}

interface JsonRoute {
  dst?: string;
  gateway?: string;
  dev?: string;
  /** absent means "boot"; numeric because we pass -N */
  protocol?: string;
  metric?: number;
  type?: string;
}

interface JsonLink {
  ifname: string;
  mtu: number;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

const OUR_PROTOCOL = String(CROSSDOCK_ROUTE_PROTOCOL);
/** A line of `ip -N monitor route` about a route of ours (additions and "Deleted ..." alike). */
const OUR_ROUTE_EVENT = new RegExp(`\\bproto ${OUR_PROTOCOL}\\b`);

export function createIpDriver(options: DriverOptions = {}): IpDriver {
  const run = resolveRunner(options);

  async function readJson<T>(argv: string[]): Promise<T[]> {
    const result = await run(argv);
    if (!result.ok) throw new Error(`${argv.join(' ')} failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
    return result.stdout.trim() === '' ? [] : (JSON.parse(result.stdout) as T[]);
  }
  // -N: protocols as numbers, even where /etc/iproute2/rt_protos names ours.
  const showRoutes = (...filter: string[]) => readJson<JsonRoute>(['ip', '-N', '-4', '-json', 'route', 'show', 'table', 'main', ...filter]);

  return {
    async observeRoutes() {
      const routes = await showRoutes('proto', OUR_PROTOCOL);
      return routes.map((r) => ({ dst: normalizeDst(r.dst), via: r.gateway ?? null, dev: r.dev ?? '' }));
    },

    async applyRoutes(commands) {
      const started = performance.now();
      const invalid = firstInvalid(commands);
      if (invalid) return resultWithoutProcess(false, '', `${invalid}\n`, started);
      if (commands.length === 0) return resultWithoutProcess(true, 'no route commands\n', '', started);

      // One read of the table decides what the batch may touch.
      let table: JsonRoute[];
      try {
        table = await showRoutes();
      } catch (error) {
        return resultWithoutProcess(false, '', `${(error as Error).message}; no route command was run\n`, started);
      }
      const ours = new Set<string>();
      const foreign = new Map<string, JsonRoute>();
      for (const route of table) {
        const dst = normalizeDst(route.dst);
        if (route.protocol === OUR_PROTOCOL) ours.add(dst);
        // `replace` matches on destination and metric, whatever the protocol.
        else if ((route.metric ?? 0) === 0) foreign.set(dst, route);
      }
      const batch: RouteCommand[] = [];
      const refused: string[] = [];
      let alreadyGone = 0;
      for (const c of commands) {
        const other = foreign.get(c.dst);
        if (c.kind === 'route.replace' && other) {
          refused.push(
            `${renderIpBatchLine(c)}: refused: ${c.dst} already has a route crossdock did not make (${describeRoute(other)}); remove it by hand if crossdock should manage ${c.dst}`,
          );
        } else if (c.kind === 'route.delete' && !ours.has(c.dst)) {
          alreadyGone += 1;
        } else {
          batch.push(c);
          if (c.kind === 'route.replace') ours.add(c.dst);
          else ours.delete(c.dst);
        }
      }
      if (batch.length === 0) {
        return resultWithoutProcess(refused.length === 0, summary(0, 0, alreadyGone), refused.map((r) => `${r}\n`).join(''), started);
      }

      // -force: one bad line must not stop the others; its error is reported per line below.
      const result = await run(['ip', '-force', '-batch', '-'], { input: renderIpBatch(batch) });
      const lineErrors = parseBatchErrors(result.stderr);
      const failures: string[] = [];
      for (const [lineNumber, message] of lineErrors) {
        const c = batch[lineNumber - 1];
        // Gone between our read and the batch: the goal is reached all the same.
        if (c?.kind === 'route.delete' && /No such process/.test(message)) alreadyGone += 1;
        else failures.push(`${c ? renderIpBatchLine(c) : `line ${lineNumber}`}: ${message}`);
      }
      const unexplained = !result.ok && lineErrors.size === 0;
      const stderr = [...refused, ...failures].map((line) => `${line}\n`).join('') + (unexplained ? result.stderr : '');
      return {
        ok: refused.length === 0 && failures.length === 0 && !unexplained,
        exitCode: result.exitCode,
        stdout: summary(batch.length - lineErrors.size, failures.length, alreadyGone),
        stderr,
        durationMs: Math.round(performance.now() - started),
      };
    },

    watch(onChange) {
      // The kernel announces every route change over netlink; `ip monitor` prints each one.
      return watchProcess(['ip', '-N', '-4', 'monitor', 'route'], {
        netns: options.netns,
        onLine: (line) => {
          if (OUR_ROUTE_EVENT.test(line)) onChange(`route: ${line.trim()}`);
        },
        // Changes made while it was down are caught by looking once it is back.
        onExit: (reason) => onChange(`the route monitor stopped (${reason}); looking again`),
      });
    },

    async observeInterfaces() {
      const links = await readJson<JsonLink>(['ip', '-json', 'address', 'show']);
      return links.map((link) => ({
        name: link.ifname,
        mtu: link.mtu,
        addresses: (link.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
      }));
    },
  };
}

/** `ip -json` prints a /32 without its prefix and 0.0.0.0/0 as "default". */
function normalizeDst(dst: string | undefined): string {
  if (dst === undefined || dst === 'default') return '0.0.0.0/0';
  return dst.includes('/') ? dst : `${dst}/32`;
}

function describeRoute(route: JsonRoute): string {
  const parts = [route.type, route.gateway && `via ${route.gateway}`, route.dev && `dev ${route.dev}`, `proto ${route.protocol ?? 'boot'}`];
  return parts.filter(Boolean).join(' ');
}

function summary(applied: number, failed: number, alreadyGone: number): string {
  return `${applied} route commands applied, ${failed} failed, ${alreadyGone} deletes found the route already gone\n`;
}

/**
 * With -force, ip prints each failing line's message(s) followed by "Command failed -:<line>".
 * Returns line number (1-based) -> message.
 */
export function parseBatchErrors(stderr: string): Map<number, string> {
  const errors = new Map<number, string>();
  let pending: string[] = [];
  for (const raw of stderr.split('\n')) {
    const line = raw.trim();
    const failed = /^Command failed \S*:(\d+)$/.exec(line);
    if (failed) {
      errors.set(Number(failed[1]), pending.join('; ') || 'failed');
      pending = [];
    } else if (line !== '') {
      pending.push(line);
    }
  }
  return errors;
}
