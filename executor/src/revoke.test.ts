// A revoked host removes what crossdock made, and nothing else.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { FirewallChain } from '@crossdock/shared';
import { FakeDockerDriver, FakeIpDriver, FakeIptablesDriver, FakeSysctlDriver } from './drivers/fake.ts';
import type { Drivers } from './observe.ts';
import { removeEverything } from './revoke.ts';

const MANAGED = { 'io.crossdock.managed': 'true' };
const chains: FirewallChain[] = [
  {
    kind: 'firewall.chain',
    table: 'filter',
    chain: 'CROSSDOCK-FORWARD',
    rules: [{ source: '10.100.0.0/16', destination: '10.100.1.0/24', target: 'ACCEPT', comment: 'crossdock' }],
  },
  {
    kind: 'firewall.chain',
    table: 'nat',
    chain: 'CROSSDOCK-POSTROUTING',
    rules: [{ source: '10.100.1.0/24', destination: '10.100.0.0/16', target: 'ACCEPT', comment: 'crossdock' }],
  },
];

let ip: FakeIpDriver;
let iptables: FakeIptablesDriver;
let docker: FakeDockerDriver;
let drivers: Drivers;

beforeEach(async () => {
  ip = new FakeIpDriver();
  iptables = new FakeIptablesDriver();
  docker = new FakeDockerDriver();
  drivers = { ip, iptables, docker, sysctl: new FakeSysctlDriver() };
  // what a host in a three-host cluster has, plus things that are not crossdock's
  for (const dst of ['10.100.2.0/24', '10.100.3.0/24']) ip.routes.set(dst, { dst, via: '198.51.100.12', dev: 'eth0' });
  ip.foreignRoutes.set('192.0.2.0/24', { dst: '192.0.2.0/24', via: '198.51.100.1', dev: 'eth0' });
  await iptables.applyFirewall(chains, [
    { kind: 'firewall.jump', table: 'filter', from: 'DOCKER-USER', to: 'CROSSDOCK-FORWARD', position: 1 },
    { kind: 'firewall.jump', table: 'nat', from: 'POSTROUTING', to: 'CROSSDOCK-POSTROUTING', position: 1 },
  ]);
  // a stale jump from FORWARD, from before Docker made DOCKER-USER
  iptables.tables.get('filter')!.rules.get('FORWARD')!.push('-A FORWARD -j CROSSDOCK-FORWARD');
  iptables.tables
    .get('nat')!
    .rules.set('POSTROUTING', [...iptables.rulesOf('nat', 'POSTROUTING'), '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE']);
  iptables.tables.get('filter')!.chains.set('MY-RULES', '-');
  iptables.tables.get('filter')!.rules.set('MY-RULES', ['-A MY-RULES -s 10.100.1.0/24 -j DROP']);
  docker.networks.set('crossdock', {
    id: '1',
    name: 'crossdock',
    subnet: '10.100.1.0/24',
    gateway: '10.100.1.1',
    labels: { ...MANAGED },
    options: {},
    containers: [],
  });
  docker.networks.set('crossdock-2', {
    id: '2',
    name: 'crossdock-2',
    subnet: '10.100.4.0/24',
    gateway: '10.100.4.1',
    labels: { ...MANAGED },
    options: {},
    containers: ['web', 'db'],
  });
  docker.networks.set('theirs', { id: '3', name: 'theirs', subnet: '172.18.0.0/16', gateway: '172.18.0.1', labels: {}, options: {}, containers: [] });
});

describe('removeEverything', () => {
  it('removes our routes, chains, jumps and idle managed networks; keeps the rest and says why', async () => {
    const report = await removeEverything(drivers);
    expect(report).toStrictEqual({
      routes: 2,
      networks: 1,
      refused: ['network crossdock-2 was kept: network crossdock-2 still has containers: web, db; stop them or disconnect them from crossdock-2 first'],
    });
    // routes: ours gone in one batch, the foreign one untouched
    expect(ip.batches).toStrictEqual([
      [
        { kind: 'route.delete', dst: '10.100.2.0/24' },
        { kind: 'route.delete', dst: '10.100.3.0/24' },
      ],
    ]);
    expect([...ip.routes.keys()]).toStrictEqual([]);
    expect([...ip.foreignRoutes.keys()]).toStrictEqual(['192.0.2.0/24']);
    // firewall: no CROSSDOCK-* chain, no jump to one, everything else as it was
    expect(await iptables.observe()).toMatchObject({ chains: [], jumps: [] });
    expect(iptables.rulesOf('filter', 'FORWARD')).toStrictEqual(['-A FORWARD -j DOCKER-USER']);
    expect(iptables.rulesOf('filter', 'DOCKER-USER')).toStrictEqual(['-A DOCKER-USER -j RETURN']);
    expect(iptables.rulesOf('filter', 'MY-RULES')).toStrictEqual(['-A MY-RULES -s 10.100.1.0/24 -j DROP']);
    expect(iptables.rulesOf('nat', 'POSTROUTING')).toStrictEqual(['-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE']);
    expect([...iptables.tables.get('filter')!.chains.keys()].filter((c) => c.startsWith('CROSSDOCK-'))).toStrictEqual([]);
    // networks: the idle managed one gone; the busy one and the unlabelled one kept
    expect([...docker.networks.keys()].sort()).toStrictEqual(['crossdock-2', 'theirs']);
  });

  it('never asks Docker to remove a network without our label, even if the driver lists one', async () => {
    vi.spyOn(docker, 'observe').mockResolvedValue({
      available: true,
      version: '20.10.24',
      networks: [...docker.networks.values()].map((n) => ({ ...structuredClone(n), containers: n.containers.length })),
      bip: null,
    });
    const remove = vi.spyOn(docker, 'removeNetwork');
    await removeEverything(drivers);
    expect(remove.mock.calls.map(([c]) => c.name).sort()).toStrictEqual(['crossdock', 'crossdock-2']);
  });

  it('still removes routes and chains when Docker is down', async () => {
    docker.available = false;
    const report = await removeEverything(drivers);
    expect(report).toStrictEqual({ routes: 2, networks: 0, refused: [] });
    expect(ip.routes.size).toBe(0);
    expect((await iptables.observe()).chains).toStrictEqual([]);
    expect(docker.networks.size).toBe(3);
  });

  it('goes on when Docker throws, and reports failed route and firewall removals', async () => {
    vi.spyOn(docker, 'observe').mockRejectedValue(new Error('connect ECONNREFUSED'));
    vi.spyOn(ip, 'applyRoutes').mockResolvedValue({
      ok: false,
      exitCode: 1,
      stdout: '',
      stderr: 'RTNETLINK answers: Operation not permitted\n',
      durationMs: 1,
    });
    vi.spyOn(iptables, 'removeAll').mockResolvedValue({ ok: false, exitCode: 4, stdout: '', stderr: 'iptables-restore: line 2 failed\n', durationMs: 1 });
    expect(await removeEverything(drivers)).toStrictEqual({
      routes: 2,
      networks: 0,
      refused: [
        'some routes were not removed: RTNETLINK answers: Operation not permitted',
        'firewall chains were not fully removed: iptables-restore: line 2 failed',
      ],
    });
  });

  it('runs no route batch when there is no route of ours, and is idempotent', async () => {
    await removeEverything(drivers);
    ip.batches = [];
    expect(await removeEverything(drivers)).toStrictEqual({
      routes: 0,
      networks: 0,
      refused: ['network crossdock-2 was kept: network crossdock-2 still has containers: web, db; stop them or disconnect them from crossdock-2 first'],
    });
    expect(ip.batches).toStrictEqual([]);
  });
});
