// The crossdock CLI as an operator runs it: the built bundle (cli/dist/main.mjs) in its own
// process, against a controller process on a real SQLite file, with executors (the real Agent
// on in-memory drivers) connected over real WebSockets. Every command in both output forms,
// exit statuses, where the token comes from, leader discovery, `wait`, colour and completion.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type WebSocket from 'ws';
import { api, REPO_ROOT, startController, type ControllerProcess } from './support/controller-process.ts';
import { SETTLED, silentExecutor, startFakeExecutor, type FakeHost } from './support/fleet.ts';

const ADMIN = 'cda_cli-suite-admin-token-000000';
const BUNDLE = path.join(REPO_ROOT, 'cli/dist/main.mjs');
/** The executors report this often (the controller's default is 30 s): a failed job is retried from a report. */
const REPORT_INTERVAL_MS = 300;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment of an operator's shell, without any crossdock setting of the machine running the tests. */
function cleanEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CROSSDOCK_') && k !== 'NO_COLOR' && k !== 'FORCE_COLOR') env[k] = v;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

function runFile(file: string, args: string[], env: NodeJS.ProcessEnv, cwd = REPO_ROOT): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { env, cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

// Each test runs the CLI 10 to 40 times, a process each (about 0.1 s on a quiet machine, 2 s on a loaded one).
describe('crossdock CLI', { timeout: 180_000 }, () => {
  let dir: string;
  let controller: ControllerProcess;
  let call: ReturnType<typeof api>;
  const executors: FakeHost[] = [];
  const sockets: WebSocket[] = [];
  const servers: Server[] = [];
  let node1Token = '';

  /** Runs the CLI with the controller and token in the environment (each can be overridden or removed). */
  const cli = (args: string[], env: Record<string, string | undefined> = {}) =>
    runFile(process.execPath, [BUNDLE, ...args], cleanEnv({ CROSSDOCK_CONTROLLER: controller.url, CROSSDOCK_ADMIN_TOKEN: ADMIN, ...env }));

  /** Runs the CLI on a terminal (a pty from util-linux `script`): stdout and stderr arrive together. */
  const onTerminal = (args: string[], env: Record<string, string | undefined> = {}) => {
    const line = [process.execPath, BUNDLE, ...args].map((a) => `'${a}'`).join(' ');
    return runFile(
      'script',
      ['-qec', line, '/dev/null'],
      cleanEnv({ CROSSDOCK_CONTROLLER: controller.url, CROSSDOCK_ADMIN_TOKEN: ADMIN, TERM: 'xterm', ...env }),
    );
  };

  beforeAll(async () => {
    // Both bundles, as `npm run build` makes them: the controller bundle also starts in a fraction of the sources' time.
    execFileSync(process.execPath, ['scripts/build.mjs', 'cli', 'controller'], { cwd: REPO_ROOT });
    dir = mkdtempSync(path.join(tmpdir(), 'crossdock-cli-'));
    controller = await startController({ dbFile: path.join(dir, 'cli.db'), adminToken: ADMIN, bundle: true });
    call = api(controller.url, ADMIN);
  });

  afterAll(async () => {
    for (const s of sockets) s.close();
    for (const e of executors) e.agent.stop();
    await Promise.allSettled(executors.map((e) => e.done));
    for (const s of servers) s.close();
    await controller?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pools: create, ls, show, rm, in tables and as the API JSON', async () => {
    const created = await cli(['pools', 'create', 'edge', '10.9.0.0/22', '--reserved', '10.9.3.0/24', '--allow-from', '192.0.2.0/29']);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(created.stdout).toBe('pool edge created: 10.9.0.0/22, /24 subnets, reserving 10.9.3.0/24\n');

    const json = await cli(['pools', 'create', 'lab', '10.1.0.0/16', '--subnet-prefix-length', '26', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual((await call('GET', '/v1/pools')).body.items.find((p: { name: string }) => p.name === 'lab'));
    expect(JSON.parse(json.stdout).subnetPrefixLength).toBe(26);

    const ls = await cli(['pools', 'ls']);
    expect(ls.code).toBe(0);
    const lines = ls.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+CIDR\s+SUBNETS\s+USED\s+ALLOCATED\s+FREE\s+RESERVED\s+ALLOW FROM$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['default', 'edge', 'lab']);
    expect(lines.find((l) => l.startsWith('edge'))).toMatch(/^edge\s+10\.9\.0\.0\/22\s+\/24\s+0%\s+0\s+3\s+1\s+192\.0\.2\.0\/29$/);
    // Columns line up: every row's second column starts where the header's does.
    const at = lines[0]!.indexOf('CIDR');
    for (const l of lines.slice(1)) expect(l.slice(at, at + 3)).toMatch(/^10\./);
    // `pools` alone lists too.
    expect((await cli(['pools'])).stdout).toBe(ls.stdout);
    expect(JSON.parse((await cli(['pools', 'ls', '--json'])).stdout)).toEqual((await call('GET', '/v1/pools')).body);

    const show = await cli(['pools', 'show', 'edge']);
    expect(show.stdout).toContain('utilization:  0% of the usable blocks: 0 allocated, 3 free, 1 reserved, of 4');
    expect(show.stdout).toContain('next free:    10.9.0.0/24, 10.9.1.0/24, 10.9.2.0/24');
    expect(JSON.parse((await cli(['pools', 'show', 'edge', '--json'])).stdout)).toEqual((await call('GET', '/v1/pools/edge')).body);

    const overlap = await cli(['pools', 'create', 'again', '10.9.0.0/16']);
    expect(overlap).toMatchObject({ code: 1, stdout: '' });
    expect(overlap.stderr).toMatch(/^error POOL_OVERLAP: 10\.9\.0\.0\/16 overlaps pool "edge" .*\n$/);

    expect(await cli(['pools', 'rm', 'lab'])).toEqual({ code: 0, stdout: 'pool lab deleted\n', stderr: '' });
    expect(await cli(['pools', 'rm', 'edge', '--json'])).toEqual({ code: 0, stdout: '', stderr: '' });
    expect((await call('GET', '/v1/pools/edge')).status).toBe(404);
    const missing = await cli(['pools', 'rm', 'edge']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error POOL_NOT_FOUND: no pool named "edge"/);
  });

  it('hosts: add prints the token once with the executor command line; ls, show, token, rm in both forms', async () => {
    const added = await cli(['hosts', 'add', 'node-1', '198.51.100.11', '--label', 'rack=r1']);
    expect(added).toMatchObject({ code: 0, stderr: '' });
    const token = /^ {2}(cdh_\S+)$/m.exec(added.stdout)?.[1];
    expect(token).toBeDefined();
    expect(added.stdout.split(token!).length - 1).toBe(3); // the token line and the two command lines
    expect(added.stdout).toContain('host node-1 registered at 198.51.100.11 on eth0, subnet 10.100.0.0/24 (pool default)\n');
    const pin = `--ca-fingerprint ${controller.caFingerprint}`;
    expect(added.stdout).toContain(`\n  node crossdock-executor.mjs install --controller ${controller.url} --token ${token} ${pin}\n`);
    expect(added.stdout).toContain(`(or from a checkout there: npm run executor -- --controller ${controller.url} --token ${token} ${pin})`);
    expect(added.stdout).toContain("is this machine's loopback");
    node1Token = token!; // the next test connects node-1's executor with it

    const json = await cli(['hosts', 'add', 'node-2', '198.51.100.12', '--no-allocate', '--interface', 'ens3', '--json']);
    const body = JSON.parse(json.stdout);
    expect(Object.keys(body).sort()).toEqual(['caFingerprint', 'host', 'join', 'token']);
    expect(body.join).toBe(`node crossdock-executor.mjs install --controller ${controller.url} --token ${body.token} ${pin}`);
    expect(body.host).toMatchObject({ name: 'node-2', interface: 'ens3', subnets: [] });

    const ls = await cli(['hosts', 'ls']);
    expect(ls.stdout).toMatch(/^NAME\s+ADDRESS\s+INTERFACE\s+STATUS\s+GENERATION\s+SUBNETS\s+LAST SEEN\n/);
    expect(ls.stdout).toMatch(/\nnode-1\s+198\.51\.100\.11\s+eth0\s+pending\s+0\/\d+\s+10\.100\.0\.0\/24\s+never\n/);
    expect(ls.stdout).toMatch(/\nnode-2\s+198\.51\.100\.12\s+ens3\s+pending\s+0\/\d+\s+-\s+never\n/);
    expect(JSON.parse((await cli(['hosts', 'ls', '--json'])).stdout)).toEqual((await call('GET', '/v1/hosts')).body);

    const show = await cli(['hosts', 'show', 'node-1']);
    expect(show.stdout).toContain('labels:      rack=r1');
    expect(show.stdout).toMatch(/\n10\.100\.0\.0\/24\s+\d+\s+10\.100\.0\.1\s+default\s+crossdock\s+network\n/);
    expect(JSON.parse((await cli(['hosts', 'show', 'node-1', '--json'])).stdout)).toEqual((await call('GET', '/v1/hosts/node-1')).body);

    const rotated = await cli(['hosts', 'token', 'node-2']);
    const newToken = /^ {2}(cdh_\S+)$/m.exec(rotated.stdout)?.[1];
    expect(rotated.stdout).toContain(`node crossdock-executor.mjs install --controller ${controller.url} --token ${newToken} ${pin}`);
    expect((await fetch(`${controller.url}/v1/agent/jobs?wait=0`, { headers: { authorization: `Bearer ${body.token}` } })).status).toBe(401);
    expect((await fetch(`${controller.url}/v1/agent/jobs?wait=0`, { headers: { authorization: `Bearer ${newToken}` } })).status).toBe(200);
    expect(Object.keys(JSON.parse((await cli(['hosts', 'token', 'node-2', '--json'])).stdout))).toEqual(['token', 'caFingerprint', 'join']);

    const bad = await cli(['hosts', 'add', 'node-3', '10.100.7.7']);
    expect(bad).toMatchObject({ code: 1, stdout: '' });
    expect(bad.stderr).toMatch(/^error ADDRESS_IN_POOL: /);
    expect((await call('GET', '/v1/hosts/node-3')).status).toBe(404);

    expect(await cli(['hosts', 'rm', 'node-2'])).toEqual({ code: 0, stdout: 'host node-2 deleted; its executor cleans up and exits\n', stderr: '' });
    expect((await call('GET', '/v1/hosts/node-2')).status).toBe(404);
  });

  it('subnets: alloc, ls, rm in both forms', async () => {
    const alloc = await cli(['subnets', 'alloc', 'node-1', '--network', 'backend']);
    expect(alloc).toMatchObject({ code: 0, stderr: '' });
    expect(alloc.stdout).toMatch(/^subnet (\d+) allocated: 10\.100\.1\.0\/24 \(gateway 10\.100\.1\.1\) to node-1, network backend, pool default\n$/);
    const id = Number(/^subnet (\d+)/.exec(alloc.stdout)![1]);
    const json = JSON.parse(
      (await cli(['subnets', 'alloc', 'node-1', '--cidr', '10.100.40.0/24', '--gateway', '10.100.40.254', '--network', 'front', '--json'])).stdout,
    );
    expect(json).toEqual((await call('GET', `/v1/subnets/${json.id}`)).body);
    expect(json).toMatchObject({ cidr: '10.100.40.0/24', gateway: '10.100.40.254', mode: 'network' });

    const ls = await cli(['subnets', 'ls', '--host', 'node-1']);
    expect(ls.stdout.split('\n')[0]).toMatch(/^ID\s+CIDR\s+GATEWAY\s+HOST\s+POOL\s+NETWORK\s+MODE$/);
    expect(ls.stdout).toMatch(new RegExp(`\\n${id}\\s+10\\.100\\.1\\.0/24\\s+10\\.100\\.1\\.1\\s+node-1\\s+default\\s+backend\\s+network\\n`));
    expect(JSON.parse((await cli(['subnets', '--host', 'node-1', '--json'])).stdout)).toEqual((await call('GET', '/v1/subnets?host=node-1')).body);

    const taken = await cli(['subnets', 'alloc', 'node-1', '--cidr', '10.100.40.0/24', '--network', 'again']);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/^error SUBNET_OVERLAP: 10\.100\.40\.0\/24 overlaps the allocated subnet/);

    expect(await cli(['subnets', 'rm', String(json.id)])).toEqual({ code: 0, stdout: `subnet ${json.id} released\n`, stderr: '' });
    expect((await call('GET', `/v1/subnets/${json.id}`)).status).toBe(404);
  });

  it('plan, jobs and jobs show against a connected executor; status in both forms', async () => {
    const plan = await cli(['plan', 'node-1']);
    const api = (await call('GET', '/v1/hosts/node-1/plan')).body;
    expect(plan.stdout).toBe(`# node-1 at generation ${api.generation}, diffed against an empty host (no executor is attached)\n${api.script}\n`);
    expect(plan.stdout).toContain('\nsysctl -w net.ipv4.ip_forward=1\n');
    const planJson = JSON.parse((await cli(['plan', 'node-1', '--json'])).stdout);
    expect(planJson).toEqual({ ...api, generation: planJson.generation });

    // node-1's executor, with the token `hosts add` printed: the route to node-4's subnet fails
    // once, so there is a failed job to read.
    const node1 = startFakeExecutor(controller.url, node1Token, { reconcileIntervalMs: REPORT_INTERVAL_MS, caFingerprint: controller.caFingerprint });
    executors.push(node1);
    await vi.waitFor(async () => expect((await call('GET', '/v1/hosts/node-1')).body.status).toBe('online'), SETTLED);
    node1.drivers.ip.failures.set('10.100.2.0/24', 'RTNETLINK answers: Invalid argument');
    expect((await call('POST', '/v1/hosts', { name: 'node-4', address: '198.51.100.14' })).body.host.subnets[0].cidr).toBe('10.100.2.0/24');
    const failed = await vi.waitFor(async () => {
      const items = (await call('GET', '/v1/jobs?host=node-1&status=failed')).body.items;
      expect(items.length).toBe(1);
      return items[0];
    }, SETTLED);

    const jobs = await cli(['jobs', '--host', 'node-1']);
    expect(jobs.stdout.split('\n')[0]).toMatch(/^ID\s+HOST\s+GEN\s+STATUS\s+COMMANDS\s+CREATED\s+DURATION\s+REASON$/);
    expect(jobs.stdout).toMatch(new RegExp(`\\n${failed.id}\\s+node-1\\s+${failed.generation}\\s+failed\\s+${failed.commandCount}\\s+`));
    expect(jobs.stdout).toMatch(/\n\d+\s+node-1\s+\d+\s+succeeded\s+\d+\s+.*connect\n/);
    expect(JSON.parse((await cli(['jobs', '--host', 'node-1', '--status', 'failed', '--json'])).stdout)).toEqual(
      (await call('GET', '/v1/jobs?host=node-1&status=failed')).body,
    );
    expect(JSON.parse((await cli(['jobs', '--limit', '1', '--json'])).stdout).items).toHaveLength(1);

    const show = await cli(['jobs', 'show', String(failed.id)]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^job:\s+\d+\nhost:\s+node-1\n/);
    expect(show.stdout).toMatch(/status:\s+failed\n/);
    expect(show.stdout).toMatch(/\[1\/\d+\] failed {2}exit \d+ {2}\d+ ms\n {4}ip route replace 10\.100\.2\.0\/24 via 198\.51\.100\.14 dev eth0 proto 252\n/);
    expect(show.stdout).toMatch(/ {4}stderr: .*RTNETLINK answers: Invalid argument/);
    expect(JSON.parse((await cli(['jobs', 'show', String(failed.id), '--json'])).stdout)).toEqual((await call('GET', `/v1/jobs/${failed.id}`)).body);

    // Against the executor now: a plan from its snapshot, nothing left to do once it has converged.
    await vi.waitFor(async () => {
      const h = (await call('GET', '/v1/hosts/node-1')).body;
      expect(h.generation.applied).toBe(h.generation.desired);
    }, SETTLED);
    expect((await cli(['plan', 'node-1'])).stdout).toMatch(/diffed against its executor's snapshot taken now\n# nothing to do: node-1 has what it should\n$/);

    const status = await cli(['status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^controller:\\s+${controller.url.replace(/\./g, '\\.')} \\(leader\\), version 0\\.1\\.0, up .+, storage ok\\n`));
    expect(status.stdout).toMatch(/hosts:\s+2 registered: 1 online, 0 offline, 1 pending \(executors: 1 websocket, 0 polling\)\n/);
    expect(status.stdout).toMatch(/behind: 0 online, 0 offline, 1 pending host\(s\) below their desired generation\n/);
    expect(status.stdout).toMatch(/\nnode-4\s+pending\s+0\/\d+\n/);
    const u = (await call('GET', '/v1/pools/default')).body.utilization;
    expect(u.allocated).toBe(3);
    expect(status.stdout).toMatch(/\ndefault\s+1\.2%\s+3\s+253\s+0\s+256\n/);
    expect(status.stdout).toMatch(new RegExp(`\\n${failed.id}\\s+node-1\\s+failed\\s+`));
    const statusJson = JSON.parse((await cli(['status', '--json'])).stdout);
    const apiStatus = (await call('GET', '/v1/status')).body;
    expect(statusJson).toEqual(apiStatus);
    expect(statusJson.hosts).toEqual({ total: 2, pending: 1, online: 1, offline: 0 });
  });

  it('wait returns once the online hosts converge, and fails naming the hosts behind on timeout', async () => {
    const r = await call('POST', '/v1/hosts', { name: 'node-5', address: '198.51.100.15' });
    const node5 = startFakeExecutor(controller.url, r.body.token, { reconcileIntervalMs: REPORT_INTERVAL_MS });
    executors.push(node5);
    await vi.waitFor(async () => expect((await call('GET', '/v1/hosts/node-5')).body.status).toBe('online'), SETTLED);
    const waited = await cli(['wait', '--timeout', '20s']);
    expect(waited).toMatchObject({ code: 0, stderr: '' });
    expect(waited.stdout).toMatch(/^all 2 online hosts applied their desired generation \((\d+ ms|[\d.]+ s)\)\n$/);
    for (const h of (await call('GET', '/v1/hosts')).body.items) if (h.status === 'online') expect(h.generation.applied).toBe(h.generation.desired);
    // A change, then wait at once: it waits for the change to reach every online host.
    expect((await cli(['subnets', 'alloc', 'node-5', '--network', 'late'])).code).toBe(0);
    expect((await cli(['wait'])).code).toBe(0);
    const subnet = (await call('GET', '/v1/subnets?host=node-5')).body.items.find((s: { network: string }) => s.network === 'late');
    expect(node1Route(subnet.cidr)).toBe('198.51.100.15');
    const json = await cli(['wait', '--json']);
    expect(JSON.parse(json.stdout).behind.counts.online).toBe(0);

    // node-6 says hello and never answers its job: online, and behind.
    const silent = await call('POST', '/v1/hosts', { name: 'node-6', address: '198.51.100.16' });
    sockets.push(await silentExecutor(controller.url, silent.body.token));
    await vi.waitFor(async () => {
      const h = (await call('GET', '/v1/hosts/node-6')).body;
      expect(h.status).toBe('online');
      expect(h.generation.applied).toBeLessThan(h.generation.desired);
    }, SETTLED);
    const started = Date.now();
    const timedOut = await cli(['wait', '--timeout', '1500ms']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(timedOut).toMatchObject({ code: 1, stdout: '' });
    expect(timedOut.stderr).toMatch(
      /^error WAIT_TIMEOUT: after 1\.5 s, 1 of 3 online host\(s\) have not applied their desired generation: node-6 \(applied 0 of \d+\)\n$/,
    );

    // On a terminal: a progress line naming who is behind, then the same error.
    const tty = await onTerminal(['wait', '--timeout', '1s']);
    expect(tty.code).toBe(1);
    expect(tty.stdout).toContain('\r\u001b[Kwaiting ');
    expect(tty.stdout).toMatch(/waiting \d+ ms: 2 of 3 online hosts applied their generation; behind: node-6/);
    expect(tty.stdout).toContain('error WAIT_TIMEOUT: after 1.0 s');

    function node1Route(cidr: string): string | null | undefined {
      return executors[0]!.drivers.ip.routes.get(cidr)?.via;
    }
  });

  it('colours only on a terminal, and never with NO_COLOR', async () => {
    const tty = await onTerminal(['hosts', 'ls']);
    expect(tty.code).toBe(0);
    expect(tty.stdout).toContain('\u001b[1mNAME');
    expect(tty.stdout).toContain('\u001b[32monline\u001b[0m');
    const noColor = await onTerminal(['hosts', 'ls'], { NO_COLOR: '1' });
    expect(noColor.stdout).toContain('NAME');
    expect(noColor.stdout).not.toContain('\u001b[');
    expect((await cli(['hosts', 'ls'])).stdout).not.toContain('\u001b[');
  });

  it('usage errors exit 2 with the usage of that command; --help has an example everywhere', async () => {
    const missingArg = await cli(['hosts', 'add', 'node-9']);
    expect(missingArg).toMatchObject({ code: 2, stdout: '' });
    expect(missingArg.stderr).toMatch(/^error USAGE: missing required argument 'address'\n\nUsage: crossdock hosts add \[options\] <name> <address>\n/);
    expect(missingArg.stderr).toContain('$ crossdock hosts add node-1 192.168.32.20');

    for (const [args, message, usage] of [
      [['frobnicate'], /unknown command 'frobnicate'/, 'Usage: crossdock [options] [command]'],
      [['wait', '--timeout', 'soon'], /option '--timeout <duration>' argument 'soon' is invalid\. use a duration such as 60s/, 'Usage: crossdock wait'],
      [['jobs', '--status', 'sad'], /'sad' is invalid\. Allowed choices are pending, running, succeeded, failed, timeout/, 'Usage: crossdock jobs'],
      [['jobs', 'show', 'x'], /the job id must be a whole number/, 'Usage: crossdock jobs show'],
      [['subnets', 'rm', '-3'], /the subnet id must be a whole number from 1 to/, 'Usage: crossdock subnets rm'],
      [
        ['hosts', 'add', 'n', '198.51.100.30', '--label', 'rack'],
        /label "rack" is not KEY=VALUE; use something like --label rack=r1/,
        'Usage: crossdock hosts add',
      ],
      [['hosts', 'ls', '--bogus'], /unknown option '--bogus'/, 'Usage: crossdock hosts ls'],
      [['completion', 'fish'], /'fish' is invalid/, 'Usage: crossdock completion'],
      [['pools', 'ls'], /controller "nope" is not a URL/, 'Usage: crossdock pools ls'],
      [[], /.*/, 'Usage: crossdock [options] [command]'],
    ] as Array<[string[], RegExp, string]>) {
      const r = await cli(args, args[0] === 'pools' ? { CROSSDOCK_CONTROLLER: 'nope' } : {});
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe('');
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr, args.join(' ')).toContain(usage);
    }
    // Nothing was registered by the refused label.
    expect((await call('GET', '/v1/hosts/n')).status).toBe(404);

    const commands = [
      [],
      ['status'],
      ['pools'],
      ['pools', 'ls'],
      ['pools', 'show'],
      ['pools', 'create'],
      ['pools', 'rm'],
      ['hosts'],
      ['hosts', 'ls'],
      ['hosts', 'show'],
      ['hosts', 'add'],
      ['hosts', 'rm'],
      ['hosts', 'token'],
      ['subnets'],
      ['subnets', 'ls'],
      ['subnets', 'alloc'],
      ['subnets', 'rm'],
      ['plan'],
      ['jobs'],
      ['jobs', 'show'],
      ['wait'],
      ['completion'],
    ];
    for (const c of commands) {
      const help = await cli([...c, '--help']);
      expect(help.code, c.join(' ')).toBe(0);
      expect(help.stdout, c.join(' ')).toMatch(/\nExamples?:\n {2}\$ crossdock /);
      expect(help.stdout, c.join(' ')).toContain(`Usage: crossdock${c.length ? ` ${c.join(' ')}` : ''}`);
    }
    expect((await cli(['--version'])).stdout).toBe('0.1.0\n');
  });

  it('finds the token: --token, CROSSDOCK_ADMIN_TOKEN, then the admin-token file beside the default database', async () => {
    expect((await cli(['hosts', 'ls', '--token', ADMIN], { CROSSDOCK_ADMIN_TOKEN: undefined })).code).toBe(0);
    const wrong = await cli(['hosts', 'ls', '--token', 'cda_wrong-token-0000000000000']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^error UNAUTHORIZED: the admin token is wrong.*\(the token came from --token\)\n$/);

    // A checkout of its own (the bundle, the markers of a checkout, a controller's data/admin-token):
    // no flag, no environment, and the token is read from the file.
    const checkout = path.join(dir, 'checkout');
    mkdirSync(path.join(checkout, 'cli/dist'), { recursive: true });
    mkdirSync(path.join(checkout, 'data'));
    copyFileSync(BUNDLE, path.join(checkout, 'cli/dist/main.mjs'));
    writeFileSync(path.join(checkout, 'pnpm-workspace.yaml'), 'packages:\n  - cli\n');
    writeFileSync(path.join(checkout, 'cli/package.json'), '{}\n');
    const runCheckout = (env: Record<string, string | undefined>) =>
      runFile(
        process.execPath,
        [path.join(checkout, 'cli/dist/main.mjs'), 'hosts', 'ls', '--json'],
        cleanEnv({ CROSSDOCK_CONTROLLER: controller.url, ...env }),
        dir,
      );
    const none = await runCheckout({});
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(
      /^error NO_TOKEN: no admin token: pass --token, set CROSSDOCK_ADMIN_TOKEN, .*looked for: none \(.*checkout\/data\/admin-token\)/,
    );
    writeFileSync(path.join(checkout, 'data/admin-token'), `${ADMIN}\n`, { mode: 0o600 });
    const fromFile = await runCheckout({});
    expect(fromFile.code).toBe(0);
    const names = (body: { items: Array<{ name: string }> }) => body.items.map((h) => h.name);
    expect(names(JSON.parse(fromFile.stdout))).toEqual(names((await call('GET', '/v1/hosts')).body));
    // The environment wins over the file, and names itself when refused.
    const envWins = await runCheckout({ CROSSDOCK_ADMIN_TOKEN: 'cda_wrong-token-0000000000000' });
    expect(envWins.stderr).toMatch(/\(the token came from CROSSDOCK_ADMIN_TOKEN\)/);
    // With CROSSDOCK_DB set (as for the controller), the file beside that database.
    mkdirSync(path.join(dir, 'elsewhere'));
    writeFileSync(path.join(dir, 'elsewhere/admin-token'), `${ADMIN}\n`);
    expect((await cli(['hosts', 'ls'], { CROSSDOCK_ADMIN_TOKEN: undefined, CROSSDOCK_DB: `file:${path.join(dir, 'elsewhere/x.db')}` })).code).toBe(0);
  });

  it('follows a standby to the leader, and passes over controllers that do not answer', async () => {
    // The standby role is being built alongside; this server answers as DESIGN.md says a standby does.
    const standby = async (leader: string | null): Promise<string> => {
      const server = createServer((request, response) => {
        if (request.url === '/healthz') {
          response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', role: 'standby', leader }));
          return;
        }
        response
          .writeHead(503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { code: 'NOT_LEADER', message: 'this controller is a standby', leader } }));
      });
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const address = server.address();
      return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    };
    const naming = await standby(controller.url);
    const unknowing = await standby(null);
    const closed = await standby(null);
    servers.at(-1)!.close();
    await new Promise((resolve) => setTimeout(resolve, 50));

    const followed = await cli(['hosts', 'add', 'node-7', '198.51.100.17', '--json'], { CROSSDOCK_CONTROLLER: naming });
    expect(followed.code).toBe(0);
    expect(JSON.parse(followed.stdout).host.name).toBe('node-7');
    const added = await cli(['hosts', 'token', 'node-7'], { CROSSDOCK_CONTROLLER: naming });
    expect(added.stdout).toContain(`--controller ${controller.url} --token`); // the leader's URL, not the standby's
    const list = await cli(['hosts', 'ls', '--json', '--controller', `${closed},${unknowing},${controller.url}`]);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).items.map((h: { name: string }) => h.name)).toContain('node-7');

    const nobody = await cli(['status'], { CROSSDOCK_CONTROLLER: `${closed},${unknowing}` });
    expect(nobody).toMatchObject({ code: 1, stdout: '' });
    expect(nobody.stderr).toMatch(
      new RegExp(
        `^error CONTROLLER_UNREACHABLE: no controller answered as leader: ${closed}: .*ECONNREFUSED.*; ${unknowing}: standby, no leader known; check that`,
      ),
    );
  });

  it('completion: a bash script generated from the command tree that completes commands and options', async () => {
    const bash = await cli(['completion', 'bash']);
    expect(bash.code).toBe(0);
    const script = path.join(dir, 'crossdock.bash');
    writeFileSync(script, bash.stdout);
    const complete = (words: string[]) =>
      execFileSync(
        'bash',
        ['-c', `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _crossdock; echo "\${COMPREPLY[*]}"`],
        { encoding: 'utf8' },
      ).trim();
    expect(complete(['crossdock', 'ho'])).toBe('hosts');
    expect(complete(['crossdock', 'hosts', '']).split(' ')).toEqual(expect.arrayContaining(['ls', 'show', 'add', 'rm', 'token']));
    expect(complete(['crossdock', 'hosts', 'add', '--l'])).toBe('--label');
    expect(complete(['crossdock', '--json', 'jobs', 'sh'])).toBe('show');
    const zsh = await cli(['completion', 'zsh']);
    expect(zsh.stdout).toMatch(/^#compdef crossdock\n/);
    expect(zsh.stdout).toContain('"hosts add") words=(--controller --token --ca-file --ca-fingerprint --json --interface --pool --label --no-allocate --help)');
  });

  it('runs from the checkout as `npm run -s crossdock`, with nothing but the output on stdout', async () => {
    const r = await runFile(
      'npm',
      ['run', '-s', 'crossdock', '--', 'status', '--json'],
      cleanEnv({ CROSSDOCK_CONTROLLER: controller.url, CROSSDOCK_ADMIN_TOKEN: ADMIN }),
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).hosts.total).toBeGreaterThan(0);
    const spawned = spawn('npm', ['run', '-s', 'crossdock', '--', 'frobnicate'], { cwd: REPO_ROOT, env: cleanEnv({}) });
    const code = await new Promise((resolve) => spawned.on('exit', resolve));
    expect(code).toBe(2);
  });
});
