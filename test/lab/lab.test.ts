import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missing } from '../support/requirements.ts';
import { findBusybox } from './image.ts';
import {
  containerAddress,
  dockerIn,
  down,
  execInContainer,
  forwardPolicy,
  hostExec,
  IMAGE,
  ipForward,
  readState,
  resolveLabDir,
  run,
  runContainer,
  status,
  up,
  type LabStatus,
} from './lab.ts';

const execFileAsync = promisify(execFile);
const CLI = path.join(import.meta.dirname, 'cli.ts');
const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
const dir = resolveLabDir();

async function lab(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, timeout: 120_000 });
  return stdout;
}

/** Checked here from scratch rather than through lab.ts's own leftovers(). */
async function whatIsLeft(): Promise<string[]> {
  const left: string[] = [];
  const netns = (await run('ip', ['netns', 'list'])).stdout;
  for (const line of netns.split('\n')) if (line.startsWith('cdlab-')) left.push(`netns ${line}`);
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout;
  for (const line of links.split('\n')) if (/^\d+: cdlab-/.test(line)) left.push(`link ${line.split(':')[1]?.trim()}`);
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const target = line.split(' ')[4] ?? '';
    if (target.startsWith(dir) || target.startsWith('/run/netns/cdlab-')) left.push(`mount ${target}`);
  }
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (cmdline.includes(`${dir}/`)) left.push(`process ${pid}: ${cmdline}`);
  }
  for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
    try {
      for (const entry of readdirSync(path.join('/sys/fs/cgroup', hierarchy))) if (entry.startsWith('cdlab-')) left.push(`cgroup ${hierarchy}/${entry}`);
    } catch {
      // a control file, not a hierarchy
    }
  }
  // the root namespace's routes to later segments go with the lab's veth
  for (const line of (await run('ip', ['-4', 'route', 'show'])).stdout.split('\n')) if (line.includes('cdlab-')) left.push(`root route ${line}`);
  if (existsSync(dir)) left.push(`directory ${dir}`);
  return left;
}

const reason = missing('root', 'netns', 'iptables', 'dockerd', 'busybox');

describe.skipIf(reason)('lab (needs root, network namespaces, iptables, dockerd, busybox-static)', () => {
  let labStatus: LabStatus;
  const busybox = reason ? '' : findBusybox();

  beforeAll(async () => {
    await lab('up', '--hosts', '2', '--no-crossdock');
    labStatus = JSON.parse(await lab('status', '--json')) as LabStatus;
  });

  afterAll(async () => {
    await down().catch(() => {});
  });

  it('reports two healthy hosts in status --json', () => {
    expect(labStatus.up).toBe(true);
    expect(labStatus.problems).toEqual([]);
    expect(labStatus.controller).toBeNull();
    expect(labStatus.hosts.map(({ name, netns, address, dockerHost, subnets }) => ({ name, netns, address, dockerHost, subnets }))).toEqual([
      { name: 'h1', netns: 'cdlab-h1', address: '198.51.100.11', dockerHost: `unix://${dir}/h1/docker.sock`, subnets: [] },
      { name: 'h2', netns: 'cdlab-h2', address: '198.51.100.12', dockerHost: `unix://${dir}/h2/docker.sock`, subnets: [] },
    ]);
  });

  it('runs one answering dockerd per host, each with the busybox image', async () => {
    for (const host of ['h1', 'h2']) {
      const version = await dockerIn(host, ['version', '--format', '{{.Server.Version}}']);
      expect(version.stdout.trim()).toMatch(/^\d+\.\d+/);
      const image = await dockerIn(host, ['image', 'inspect', '--format', '{{.Id}}', IMAGE]);
      expect(image.stdout.trim()).toMatch(/^sha256:/);
    }
    const [one, two] = labStatus.hosts.map((host) => host.dockerd.pid);
    expect(one).not.toBe(two);
    for (const host of labStatus.hosts) {
      // in its host's network namespace, and in a mount namespace of its own shared with its containerd
      const inode = (await run('stat', ['-L', '-c', '%i', `/run/netns/${host.netns}`])).stdout.trim();
      expect(readlinkSync(`/proc/${host.dockerd.pid}/ns/net`)).toBe(`net:[${inode}]`);
      const containerd = Number(readFileSync(path.join(dir, host.name, 'containerd.pid'), 'utf8'));
      expect(readlinkSync(`/proc/${containerd}/ns/net`)).toBe(`net:[${inode}]`);
      expect(readlinkSync(`/proc/${host.dockerd.pid}/ns/mnt`)).toBe(readlinkSync(`/proc/${containerd}/ns/mnt`));
      expect(readlinkSync(`/proc/${host.dockerd.pid}/ns/mnt`)).not.toBe(readlinkSync('/proc/self/ns/mnt'));
      // what 20.10 and containerd would otherwise write to /etc/docker and /opt/containerd
      expect(existsSync(path.join(dir, host.name, 'key.json'))).toBe(true);
      expect(existsSync(path.join(dir, host.name, 'containerd', 'opt'))).toBe(true);
    }
  });

  it('has FORWARD policy DROP on h1 (Ubuntu case) and ACCEPT on h2 (CentOS case)', async () => {
    expect(await forwardPolicy('h1')).toBe('DROP');
    expect(await forwardPolicy('h2')).toBe('ACCEPT');
    expect(await ipForward('h1')).toBe(1);
    expect(await ipForward('h2')).toBe(1);
    expect(labStatus.hosts.map((host) => [host.forwardPolicy, host.forwarding])).toEqual([
      ['DROP', 'ubuntu'],
      ['ACCEPT', 'centos'],
    ]);
  });

  it('connects the hosts on the LAN and to the controller address, and to nothing else', async () => {
    expect((await hostExec('h1', [busybox, 'ping', '-c', '1', '-W', '2', '198.51.100.12'], { check: false })).code).toBe(0);
    expect((await hostExec('h2', [busybox, 'ping', '-c', '1', '-W', '2', '198.51.100.1'], { check: false })).code).toBe(0);
    for (const host of ['h1', 'h2']) {
      expect((await hostExec(host, ['ip', 'route', 'show', 'default'])).stdout.trim()).toBe('');
      // a route lookup only: no packet is sent
      expect((await hostExec(host, ['ip', 'route', 'get', '192.0.2.1'], { check: false })).code).not.toBe(0);
    }
    expect(readFileSync('/proc/sys/net/ipv4/conf/cdlab-ctl/forwarding', 'utf8').trim()).toBe('0');
    expect((await run('ip', ['route', 'show', 'dev', 'cdlab-ctl'])).stdout.trim()).toMatch(
      /^198\.51\.100\.0\/24 proto kernel scope link src 198\.51\.100\.1\s*$/,
    );
  });

  it('runs containers that reach their own host bridge gateway', async () => {
    await dockerIn('h1', ['network', 'create', '--subnet', '10.100.1.0/24', '--gateway', '10.100.1.1', 'labtest']);
    await runContainer('h1', { name: 'c1', network: 'labtest', ip: '10.100.1.5', cmd: ['sleep', '3600'] });
    await runContainer('h2', { name: 'c2', cmd: ['sleep', '3600'] });
    expect(await containerAddress('h1', 'c1', 'labtest')).toBe('10.100.1.5');
    expect((await execInContainer('h1', 'c1', ['ping', '-c', '1', '-W', '2', '10.100.1.1'])).code).toBe(0);
    expect((await execInContainer('h2', 'c2', ['ping', '-c', '1', '-W', '2', '172.17.0.1'])).code).toBe(0);
  });

  it('keeps the engines mounts out of the root mount namespace', () => {
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    expect(mountinfo).not.toContain(`${dir}/`);
  });

  it('leaves nothing behind after down, with containers running', async () => {
    await lab('down');
    expect(await whatIsLeft()).toEqual([]);
    const after = JSON.parse(await lab('status', '--json').catch((error: { stdout: string }) => error.stdout)) as LabStatus;
    expect(after.up).toBe(false);
    await lab('down'); // idempotent
    expect(await whatIsLeft()).toEqual([]);
  });
});

describe.skipIf(reason)('a lab of two segments (needs root, network namespaces, iptables, dockerd, busybox-static)', () => {
  let labStatus: LabStatus;
  const busybox = reason ? '' : findBusybox();
  const pingFrom = (host: string, address: string) => hostExec(host, [busybox, 'ping', '-c', '1', '-W', '2', address], { check: false });
  const inRouter = (argv: string[]) => run('nsenter', ['--net=/run/netns/cdlab-router', '--', ...argv], { check: false });

  beforeAll(async () => {
    // three hosts in two segments: h1 and h2 on the controller's LAN, h3 alone behind the router
    await lab('up', '--hosts', '3', '--segments', '2', '--no-crossdock');
    labStatus = JSON.parse(await lab('status', '--json')) as LabStatus;
  });

  afterAll(async () => {
    await down().catch(() => {});
  });

  it('reports the segments, the router and each host in its segment', () => {
    expect(labStatus.problems).toEqual([]);
    expect(labStatus.segments).toEqual([
      { index: 1, netns: 'cdlab-lan', bridge: 'br0', cidr: '198.51.100.0/24', prefixLength: 24, router: '198.51.100.254' },
      { index: 2, netns: 'cdlab-lan2', bridge: 'br0', cidr: '203.0.113.64/27', prefixLength: 27, router: '203.0.113.94' },
    ]);
    expect(labStatus.router).toEqual({ netns: 'cdlab-router', forwarding: 1 });
    expect(labStatus.hosts.map(({ name, address, segment, forwarding }) => ({ name, address, segment, forwarding }))).toEqual([
      { name: 'h1', address: '198.51.100.11', segment: 1, forwarding: 'ubuntu' },
      { name: 'h2', address: '198.51.100.12', segment: 1, forwarding: 'centos' },
      { name: 'h3', address: '203.0.113.65', segment: 2, forwarding: 'ubuntu' },
    ]);
  });

  it('gives each host its segment on-link and the other segment through the router, and nothing else', async () => {
    const routes = async (host: string) =>
      (await hostExec(host, ['ip', '-4', 'route', 'show'])).stdout
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line && !line.includes('docker0'));
    expect(await routes('h1')).toEqual(['198.51.100.0/24 dev eth0 proto kernel scope link src 198.51.100.11', '203.0.113.64/27 via 198.51.100.254 dev eth0']);
    expect(await routes('h3')).toEqual(['198.51.100.0/24 via 203.0.113.94 dev eth0', '203.0.113.64/27 dev eth0 proto kernel scope link src 203.0.113.65']);
    for (const host of ['h1', 'h2', 'h3']) {
      // route lookups only: the uplink, the rest of 203.0.113.0/24 and container subnets are unreachable
      for (const outside of ['192.0.2.1', '203.0.113.1', '203.0.113.200', '10.100.1.1'])
        expect((await hostExec(host, ['ip', 'route', 'get', outside], { check: false })).code, `${host} -> ${outside}`).not.toBe(0);
    }
    // a peer in the other segment is off-link: the kernel sends to it through the router
    expect((await hostExec('h1', ['ip', 'route', 'get', '203.0.113.65'])).stdout).toContain('via 198.51.100.254 dev eth0');
    expect((await hostExec('h2', ['ip', 'route', 'get', '198.51.100.11'])).stdout).not.toContain('via');
  });

  it('forwards between the segments through the router, which knows no container subnet and rewrites nothing', async () => {
    for (const [from, to] of [
      ['h1', '203.0.113.65'],
      ['h3', '198.51.100.12'],
    ] as const) {
      const result = await pingFrom(from, to);
      expect(result.code, `${from} -> ${to}: ${result.stdout}`).toBe(0);
      // one hop: the router decremented the TTL of a reply sent with a fresh namespace's 64
      expect(result.stdout).toMatch(/ttl=63/);
    }
    // the controller's address, in the root namespace
    expect((await pingFrom('h3', '198.51.100.1')).code).toBe(0);
    expect((await pingFrom('h1', '198.51.100.12')).stdout).toMatch(/ttl=64/);

    const router = (await inRouter(['ip', '-4', 'route', 'show'])).stdout.trim().split('\n');
    expect(router.map((line) => line.trim())).toEqual([
      '198.51.100.0/24 dev seg1 proto kernel scope link src 198.51.100.254',
      '203.0.113.64/27 dev seg2 proto kernel scope link src 203.0.113.94',
    ]);
    for (const outside of ['10.100.1.1', '172.17.0.2', '192.0.2.1'])
      expect((await inRouter(['ip', 'route', 'get', outside])).code, `router -> ${outside}`).not.toBe(0);
    expect((await inRouter(['iptables-save', '-t', 'nat'])).stdout).not.toMatch(/MASQUERADE|SNAT|DNAT/);

    // TCP across: the server in h3 sees h1's own address
    const server = spawn('nsenter', ['--net=/run/netns/cdlab-h3', '--', busybox, 'nc', '-ll', '-p', '9090', '-e', busybox, 'netstat', '-tn'], {
      stdio: 'ignore',
    });
    try {
      let answer = '';
      for (let attempt = 0; attempt < 20 && !answer.includes('Active Internet connections'); attempt++) {
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 250));
        answer = (await hostExec('h1', [busybox, 'nc', '-w', '3', '203.0.113.65', '9090'], { check: false })).stdout;
      }
      expect(answer).toMatch(/203\.0\.113\.65:9090\s+(::ffff:)?198\.51\.100\.11:\d+/);
    } finally {
      server.kill();
    }
  });

  it('keeps the root namespace a non-forwarding end: one link, the LAN and the routes to the later segments through the router', async () => {
    expect(readFileSync('/proc/sys/net/ipv4/conf/cdlab-ctl/forwarding', 'utf8').trim()).toBe('0');
    const routes = (await run('ip', ['-4', 'route', 'show', 'dev', 'cdlab-ctl'])).stdout
      .trim()
      .split('\n')
      .map((line) => line.trim());
    expect(routes).toEqual(['198.51.100.0/24 proto kernel scope link src 198.51.100.1', '203.0.113.64/27 via 198.51.100.254']);
  });

  it('removes the router, the segment LANs and the root routes on down', async () => {
    await lab('down');
    expect(await whatIsLeft()).toEqual([]);
    expect((await run('ip', ['-4', 'route', 'show', 'root', '203.0.113.64/27'])).stdout.trim()).toBe('');
  });
});

describe.skipIf(reason)('lab recovery (needs root, network namespaces, iptables, dockerd, busybox-static)', () => {
  afterAll(async () => {
    await down().catch(() => {});
  });

  it('comes back up after a dockerd was killed with its containers running', async () => {
    await up({ hosts: 2, crossdock: false });
    await runContainer('h1', { name: 'orphan', cmd: ['sleep', '3600'] });
    const state = readState()!;
    process.kill(state.hosts[0]!.dockerdPid!, 'SIGKILL');

    await up({ hosts: 2, crossdock: false });
    const lab = await status();
    expect(lab.problems).toEqual([]);
    expect(lab.hosts.map((host) => host.forwardPolicy)).toEqual(['DROP', 'ACCEPT']);
    expect((await dockerIn('h1', ['ps', '-aq'])).stdout.trim()).toBe('');

    await down();
    expect(await whatIsLeft()).toEqual([]);
  });

  it('comes back up after up itself was killed halfway, and after state.json was lost', async () => {
    const child = execFile(process.execPath, ['--import', 'tsx', CLI, 'up', '--hosts', '3', '--no-crossdock'], { cwd: REPO_ROOT });
    // kill it once the first dockerd exists, leaving namespaces and engines behind
    const deadline = Date.now() + 30_000;
    while (!existsSync(path.join(dir, 'h1', 'dockerd.pid')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    await run('rm', ['-f', path.join(dir, 'state.json')]);

    await up({ hosts: 2, crossdock: false });
    const lab = await status();
    expect(lab.problems).toEqual([]);
    expect(lab.hosts).toHaveLength(2);
    expect(existsSync('/run/netns/cdlab-h3')).toBe(false);

    await down();
    expect(await whatIsLeft()).toEqual([]);
  });
});
