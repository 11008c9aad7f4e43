// install and uninstall against a temporary directory standing in for /, with a recording
// service manager in place of systemctl (no systemd runs here; test/onefile-install.test.ts runs
// the built file itself with --root). The purge uses the in-memory drivers, which pass the same
// contract suites as the real ones.
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommandResult } from '@crossdock/shared';
import { FakeDockerDriver, FakeIpDriver, FakeIptablesDriver, FakeSysctlDriver } from './drivers/fake.ts';
import type { ServiceManager } from './drivers/systemd.ts';
import { EXIT_INCOMPLETE, INSTALL_PATHS, UsageError, install, renderUnit, uninstall, unitEnvironment, type UninstallContext } from './install.ts';

const TOKEN = 'cdh_0123456789abcdefghijklmnopqrstuvwxyzABCDEF';
const CONTROLLER = 'http://192.168.32.5:7800';
const ok: CommandResult = { ok: true, exitCode: 0, stdout: '', stderr: '', durationMs: 1 };

let dir: string;
let system: string;
let program: string;
let lines: string[];
let calls: string[][];
let services: ServiceManager & { running: boolean };
let ip: FakeIpDriver;
let docker: FakeDockerDriver;

function context(overrides: Partial<UninstallContext> = {}): UninstallContext {
  return {
    print: (line) => lines.push(line),
    services,
    build: { kind: 'onefile', file: program },
    nodePath: '/usr/bin/node',
    systemRoot: system,
    drivers: () => ({ ip, iptables: new FakeIptablesDriver(), docker, sysctl: new FakeSysctlDriver() }),
    ...overrides,
  };
}

const at = (file: string) => path.join(system, file);
const programFile = path.posix.join(INSTALL_PATHS.programDir, 'crossdock-executor.mjs');

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'crossdock-install-'));
  system = path.join(dir, 'system');
  program = path.join(dir, 'crossdock-executor.mjs');
  writeFileSync(program, '#!/usr/bin/env node\nconsole.log("the executor");\n');
  lines = [];
  calls = [];
  services = {
    running: true,
    systemctl: async (args) => {
      calls.push([...args]);
      return ok;
    },
  };
  ip = new FakeIpDriver();
  docker = new FakeDockerDriver();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('install', () => {
  it('writes the program, the command, the 0600 token and the unit, then enables and starts the service', async () => {
    expect(await install(['--controller', CONTROLLER, '--token', TOKEN], {}, context())).toBe(0);
    expect(readFileSync(at(programFile), 'utf8')).toBe(readFileSync(program, 'utf8'));
    expect(statSync(at(programFile)).mode & 0o7777).toBe(0o755);
    expect(readlinkSync(at(INSTALL_PATHS.command))).toBe('../lib/crossdock/crossdock-executor.mjs');
    expect(readFileSync(at(INSTALL_PATHS.token), 'utf8')).toBe(`${TOKEN}\n`);
    expect(statSync(at(INSTALL_PATHS.token)).mode & 0o7777).toBe(0o600);
    const unit = readFileSync(at(INSTALL_PATHS.unit), 'utf8');
    expect(unit).not.toContain(TOKEN);
    expect(unit).toContain('Environment="CROSSDOCK_TOKEN_FILE=/etc/crossdock/token"\n');
    expect(unit).toContain('Environment="NODE_OPTIONS=--max-semi-space-size=1"\n');
    expect(unit).toContain(`Environment="CROSSDOCK_CONTROLLER=${CONTROLLER}"\n`);
    expect(unit).toContain('ExecStart=/usr/bin/node /usr/local/lib/crossdock/crossdock-executor.mjs\n');
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^After=network-online\.target docker\.service$/m);
    expect(unit).toMatch(/^Wants=network-online\.target$/m);
    expect(unit).toMatch(/^WantedBy=multi-user\.target$/m);
    expect(calls).toEqual([['daemon-reload'], ['enable', 'crossdock-executor.service'], ['restart', 'crossdock-executor.service']]);
    expect(lines.at(-1)).toContain('journalctl -u crossdock-executor -f');
    expect(lines.join('\n')).not.toContain(TOKEN);
  });

  it('a second install with the same settings changes no file and only makes sure the service runs', async () => {
    await install(['--controller', CONTROLLER, '--token', TOKEN], {}, context());
    const inodes = [programFile, INSTALL_PATHS.token, INSTALL_PATHS.unit].map((f) => statSync(at(f)).ino);
    calls = [];
    lines = [];
    expect(await install(['--controller', CONTROLLER, '--token', TOKEN], {}, context())).toBe(0);
    expect([programFile, INSTALL_PATHS.token, INSTALL_PATHS.unit].map((f) => statSync(at(f)).ino)).toEqual(inodes);
    expect(lines.filter((l) => l.endsWith('is up to date'))).toHaveLength(4);
    expect(calls).toEqual([['daemon-reload'], ['enable', 'crossdock-executor.service'], ['start', 'crossdock-executor.service']]);
  });

  it('a new token or controller updates those files in place and restarts the service', async () => {
    await install(['--controller', CONTROLLER, '--token', TOKEN], {}, context());
    calls = [];
    await install(['--controller', 'http://192.168.32.6:7800', '--token', 'cdh_rotated'], {}, context());
    expect(readFileSync(at(INSTALL_PATHS.token), 'utf8')).toBe('cdh_rotated\n');
    expect(statSync(at(INSTALL_PATHS.token)).mode & 0o7777).toBe(0o600);
    expect(readFileSync(at(INSTALL_PATHS.unit), 'utf8')).toContain('CROSSDOCK_CONTROLLER=http://192.168.32.6:7800"');
    expect(calls.at(-1)).toEqual(['restart', 'crossdock-executor.service']);
  });

  it('reads the token from a file, from standard input, or from CROSSDOCK_TOKEN', async () => {
    const file = path.join(dir, 'token');
    writeFileSync(file, `  ${TOKEN}\n\n`);
    await install(['--controller', CONTROLLER, '--token-file', file], {}, context());
    expect(readFileSync(at(INSTALL_PATHS.token), 'utf8')).toBe(`${TOKEN}\n`);
    await install(['--controller', CONTROLLER, '--token-file', '-'], {}, context({ stdin: () => 'cdh_from_stdin\n' }));
    expect(readFileSync(at(INSTALL_PATHS.token), 'utf8')).toBe('cdh_from_stdin\n');
    await install(['--controller', CONTROLLER], { CROSSDOCK_TOKEN: 'cdh_from_env' }, context());
    expect(readFileSync(at(INSTALL_PATHS.token), 'utf8')).toBe('cdh_from_env\n');
  });

  it('puts run settings in the unit as the environment the executor reads, quoted for systemd', async () => {
    const argv = ['--controller', CONTROLLER, '--token', TOKEN, '--docker-host', 'unix:///run/docker.sock', '--transport', 'polling'];
    argv.push('--reconcile-interval-ms', '5000', '--allow-engine-restart', '--engine-restart-command', '["sh","-c","echo 100% \\"done\\""]');
    expect(await install(argv, {}, context())).toBe(0);
    const unit = readFileSync(at(INSTALL_PATHS.unit), 'utf8');
    expect(unit).toContain('Environment="DOCKER_HOST=unix:///run/docker.sock"\n');
    expect(unit).toContain('Environment="CROSSDOCK_TRANSPORT=polling"\n');
    expect(unit).toContain('Environment="CROSSDOCK_RECONCILE_INTERVAL_MS=5000"\n');
    expect(unit).toContain('Environment="CROSSDOCK_ALLOW_ENGINE_RESTART=true"\n');
    expect(unit).toContain(String.raw`Environment="CROSSDOCK_ENGINE_RESTART_COMMAND=[\"sh\",\"-c\",\"echo 100%% \\\"done\\\"\"]"`);
  });

  it('where systemd does not run, writes the files and prints the command that starts the executor by hand', async () => {
    services.running = false;
    expect(await install(['--controller', CONTROLLER, '--token', TOKEN, '--transport', 'websocket'], {}, context())).toBe(0);
    expect(calls).toEqual([]);
    expect(lines.at(-2)).toContain('systemd is not running on this machine');
    const command = lines.at(-1)!.trim();
    expect(command).toBe(
      `env CROSSDOCK_CONTROLLER=${CONTROLLER} CROSSDOCK_TRANSPORT=websocket CROSSDOCK_TOKEN_FILE=/etc/crossdock/token /usr/local/bin/crossdock-executor`,
    );
    expect(command).not.toContain(TOKEN);
  });

  it('--dry-run prints what it would write and run, and changes nothing', async () => {
    expect(await install(['--controller', CONTROLLER, '--token', TOKEN, '--dry-run'], {}, context())).toBe(0);
    expect(existsSync(system)).toBe(false);
    expect(calls).toEqual([]);
    const printed = lines.join('\n');
    expect(printed).toContain(`would write ${at(INSTALL_PATHS.token)} (the host token, mode 0600, ${TOKEN.length + 1} bytes)`);
    expect(printed).toContain('    ExecStart=/usr/bin/node /usr/local/lib/crossdock/crossdock-executor.mjs');
    expect(printed).toContain('would run: systemctl enable crossdock-executor.service');
    expect(printed).not.toContain(TOKEN);
  });

  it.each([
    [['--token', TOKEN], /no controller given; pass --controller/],
    [['--controller', CONTROLLER], /no host token given/],
    [['--controller', CONTROLLER, '--token', TOKEN, '--token-file', '/x'], /--token or --token-file, not both/],
    [['--controller', '192.168.32.5:7800', '--token', TOKEN], /is not a URL/],
    [['--controller', CONTROLLER, '--token', 'two words'], /spaces or characters outside printable ASCII/],
    [['--controller', CONTROLLER, '--token', TOKEN, '--transport', 'carrier-pigeon'], /transport "carrier-pigeon" is unknown; use auto, websocket or polling/],
    [['--controller', CONTROLLER, '--token', TOKEN, '--docker-host', 'unix:///a\nExecStart=/bin/evil'], /control character/],
    [['--controller', CONTROLLER, '--token', TOKEN, '--root', ''], /--root is empty/],
    [['--controller', CONTROLLER, '--token', TOKEN, '--colour'], /Unknown option '--colour'/],
    [['--controller', CONTROLLER, '--token-file', '/nonexistent/token'], /cannot read the token from \/nonexistent\/token: ENOENT/],
  ])('refuses %j, saying what would be right, and writes nothing', async (argv, message) => {
    await expect(install(argv, {}, context())).rejects.toThrow(UsageError);
    await expect(install(argv, {}, context())).rejects.toThrow(message);
    expect(existsSync(system)).toBe(false);
    expect(calls).toEqual([]);
  });

  it('refuses to install from a checkout, whose bundle needs node_modules', async () => {
    await expect(install(['--controller', CONTROLLER, '--token', TOKEN], {}, context({ build: { kind: 'checkout', file: program } }))).rejects.toThrow(
      /npm run build.*crossdock-executor\.mjs install/,
    );
    expect(existsSync(system)).toBe(false);
  });

  it('installs the single executable under its own name, run directly by the unit', async () => {
    await install(['--controller', CONTROLLER, '--token', TOKEN], {}, context({ build: { kind: 'sea', file: program } }));
    expect(readlinkSync(at(INSTALL_PATHS.command))).toBe('../lib/crossdock/crossdock-executor');
    expect(readFileSync(at(INSTALL_PATHS.unit), 'utf8')).toContain('\nExecStart=/usr/local/lib/crossdock/crossdock-executor\n');
  });
});

describe('uninstall', () => {
  beforeEach(async () => {
    await install(['--controller', CONTROLLER, '--token', TOKEN], {}, context());
    calls = [];
    lines = [];
  });

  it('stops and disables the service, then removes every file install wrote and its own directories', async () => {
    writeFileSync(at('/etc/systemd/system/other.service'), '[Unit]\n');
    expect(await uninstall([], {}, context())).toBe(0);
    expect(calls).toEqual([['disable', '--now', 'crossdock-executor.service'], ['daemon-reload']]);
    for (const file of [programFile, INSTALL_PATHS.command, INSTALL_PATHS.token, INSTALL_PATHS.unit, INSTALL_PATHS.programDir, INSTALL_PATHS.tokenDir]) {
      expect(existsSync(at(file)), file).toBe(false);
    }
    expect(readFileSync(at('/etc/systemd/system/other.service'), 'utf8')).toBe('[Unit]\n');
    expect(lstatSync(at('/usr/local/bin')).isDirectory()).toBe(true);
    lines = [];
    expect(await uninstall([], {}, context())).toBe(0);
    expect(lines).toContain(`crossdock-executor is not installed under ${system}: nothing to remove`);
  });

  it('--purge removes crossdock routes and idle networks, and keeps a network with containers, naming it', async () => {
    ip.routes.set('10.100.2.0/24', { dst: '10.100.2.0/24', via: '198.51.100.12', dev: 'eth0' });
    ip.foreignRoutes.set('192.0.2.0/24', { dst: '192.0.2.0/24', via: '198.51.100.1', dev: 'eth0' });
    const managed = { 'io.crossdock.managed': 'true' };
    docker.networks.set('crossdock', {
      id: '1',
      name: 'crossdock',
      subnet: '10.100.1.0/24',
      gateway: '10.100.1.1',
      labels: managed,
      options: {},
      containers: [],
    });
    docker.networks.set('backend', {
      id: '2',
      name: 'backend',
      subnet: '10.100.4.0/24',
      gateway: '10.100.4.1',
      labels: managed,
      options: {},
      containers: ['web'],
    });
    docker.networks.set('theirs', { id: '3', name: 'theirs', subnet: '172.18.0.0/16', gateway: '172.18.0.1', labels: {}, options: {}, containers: [] });
    expect(await uninstall(['--purge'], {}, context())).toBe(EXIT_INCOMPLETE);
    expect([...ip.routes.keys()]).toEqual([]);
    expect([...ip.foreignRoutes.keys()]).toEqual(['192.0.2.0/24']);
    expect([...docker.networks.keys()].sort()).toEqual(['backend', 'theirs']);
    expect(lines).toContain("removed 1 route(s), crossdock's firewall chains and 1 Docker network(s)");
    expect(lines.join('\n')).toMatch(/network backend was kept: .*still has containers: web/);
    // the files go all the same: the kept network is a plain Docker network now
    expect(existsSync(at(INSTALL_PATHS.unit))).toBe(false);
  });

  it('--purge says so when Docker does not answer, and still removes routes and files', async () => {
    ip.routes.set('10.100.2.0/24', { dst: '10.100.2.0/24', via: '198.51.100.12', dev: 'eth0' });
    docker.available = false;
    expect(await uninstall(['--purge', '--docker-host', 'unix:///nowhere.sock'], {}, context())).toBe(EXIT_INCOMPLETE);
    expect(lines.join('\n')).toContain('Docker did not answer at unix:///nowhere.sock');
    expect(ip.routes.size).toBe(0);
    expect(existsSync(at(INSTALL_PATHS.token))).toBe(false);
  });

  it('--dry-run lists what would go and changes nothing', async () => {
    ip.routes.set('10.100.2.0/24', { dst: '10.100.2.0/24', via: '198.51.100.12', dev: 'eth0' });
    expect(await uninstall(['--dry-run', '--purge'], {}, context())).toBe(0);
    expect(calls).toEqual([]);
    expect(lines).toContain('would run: systemctl disable --now crossdock-executor.service');
    expect(lines).toContain(`would remove ${at(INSTALL_PATHS.token)}`);
    expect(lines).toContain("would remove 1 route(s) of crossdock's protocol: 10.100.2.0/24");
    expect(existsSync(at(INSTALL_PATHS.token))).toBe(true);
    expect(ip.routes.size).toBe(1);
  });

  it('refuses --docker-host without --purge', async () => {
    await expect(uninstall(['--docker-host', 'unix:///x'], {}, context())).rejects.toThrow('--docker-host is only for --purge');
    expect(existsSync(at(INSTALL_PATHS.unit))).toBe(true);
  });
});

describe('unit syntax', () => {
  it('quotes every Environment= value so that systemd reads it back as given', () => {
    expect(unitEnvironment('A', 'x y')).toBe('Environment="A=x y"');
    expect(unitEnvironment('A', '"q" \\ 50%')).toBe('Environment="A=\\"q\\" \\\\ 50%%"');
    expect(() => unitEnvironment('A', 'a\nb')).toThrow(/control character/);
  });

  it('quotes an ExecStart word with a space', () => {
    expect(renderUnit({ kind: 'onefile', nodePath: '/opt/node 20/bin/node', environment: [] })).toContain(
      'ExecStart="/opt/node 20/bin/node" /usr/local/lib/crossdock/crossdock-executor.mjs',
    );
  });
});
