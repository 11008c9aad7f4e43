import { execFile } from 'node:child_process';
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
