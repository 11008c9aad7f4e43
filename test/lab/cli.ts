// npm run lab -- up [--hosts N] [--segments K] [--no-crossdock] | status [--json] | down | restart-engine <host>
import { parseArgs } from 'node:util';
import { DEFAULT_HOSTS, DEFAULT_SEGMENTS, down, resolveLabDir, restartEngine, status, up, type LabStatus } from './lab.ts';

const USAGE = `usage: lab <command> [options]
  up [--hosts N] [--segments K] [--no-crossdock]
                                    remove any earlier lab, build N hosts (default ${DEFAULT_HOSTS}) split in order
                                    into K segments joined by a router (default ${DEFAULT_SEGMENTS}), start crossdock
  status [--json]                   what is running; exit status 1 unless the lab is up and healthy
  down                              stop and remove everything the lab made
  restart-engine <host>             restart one host's dockerd (what the executor runs for bip changes)
options:
  --lab-dir DIR                     lab directory (default $CROSSDOCK_LAB_DIR or /run/crossdock-lab)
  -v, --verbose                     print each step`;

function printStatus(lab: LabStatus): void {
  if (!lab.up) {
    console.log(`no lab in ${lab.dir}`);
  } else {
    console.log(`lab in ${lab.dir}: ${lab.healthy ? 'healthy' : 'UNHEALTHY'}`);
    if (lab.router) {
      const segments = lab.segments.map((segment) => `${segment.index} ${segment.cidr} (router ${segment.router})`).join(', ');
      console.log(`segments ${segments}; router namespace ${lab.router.netns}`);
    }
    console.log(
      lab.controller
        ? `controller ${lab.controller.url} (${lab.controller.running ? 'running' : 'stopped'}), admin token ${lab.controller.adminToken}`
        : 'controller not started (--no-crossdock)',
    );
    for (const host of lab.hosts) {
      const engine = host.dockerd.version ? `dockerd ${host.dockerd.version} pid ${host.dockerd.pid}` : 'dockerd DOWN';
      const executor = host.executor ? `, executor ${host.executor.running ? 'running' : 'STOPPED'}` : '';
      const subnets = host.subnets.length ? `, subnets ${host.subnets.map((subnet) => subnet.cidr).join(' ')}` : '';
      const segment = lab.router ? `  segment ${host.segment}` : '';
      console.log(
        `  ${host.name}  ${host.address}${segment}  ${host.netns}  ${engine}  FORWARD ${host.forwardPolicy} (${host.forwarding})${executor}${subnets}`,
      );
      console.log(`      DOCKER_HOST=${host.dockerHost}`);
    }
  }
  for (const problem of lab.problems) console.log(`  problem: ${problem}`);
}

/** A count flag as a number; text that is not one is named as given (up checks the range). */
function countOption(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new Error(`--${name} must be a whole number, not ${JSON.stringify(value)}`);
  return Number(value);
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      hosts: { type: 'string' },
      segments: { type: 'string' },
      'no-crossdock': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'lab-dir': { type: 'string' },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, ...rest] = positionals;
  const dir = resolveLabDir(values['lab-dir']);
  const started = Date.now();
  const log = values.verbose ? (line: string) => console.error(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`) : () => {};
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;

  switch (command) {
    case 'up': {
      const hosts = countOption('hosts', values.hosts, DEFAULT_HOSTS);
      const segments = countOption('segments', values.segments, DEFAULT_SEGMENTS);
      await up({ dir, hosts, segments, crossdock: !values['no-crossdock'], log });
      console.error(`lab up in ${elapsed()}`);
      printStatus(await status({ dir }));
      return 0;
    }
    case 'status': {
      const lab = await status({ dir });
      if (values.json) console.log(JSON.stringify(lab, null, 2));
      else printStatus(lab);
      return lab.up && lab.healthy ? 0 : 1;
    }
    case 'down':
      await down({ dir, log });
      console.error(`lab down in ${elapsed()}`);
      return 0;
    case 'restart-engine': {
      const host = rest[0];
      if (!host) break;
      const pid = await restartEngine(dir, host);
      console.error(`dockerd of ${host} restarted (pid ${pid}) in ${elapsed()}`);
      return 0;
    }
    default:
      if (!values.help) console.error(command ? `unknown command ${command}` : 'missing command');
  }
  console.error(USAGE);
  return values.help ? 0 : 2;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`lab: ${error.message}`);
    process.exit(1);
  },
);
