import { VXLAN_DEVICE, type CommandResult, type VxlanCommand, type VxlanDevice } from '@crossdock/shared';
import { describe, expect, it } from 'vitest';
import { FakeVxlanDriver } from './fake.ts';
import { createVxlanDriver, isWatchedLinkEvent } from './vxlan.ts';

const DEVICE: VxlanDevice = {
  kind: 'vxlan.device',
  name: VXLAN_DEVICE,
  vni: 7800,
  port: 4789,
  local: '203.0.113.2',
  mac: '02:cd:00:00:00:01',
  address: '169.254.64.1/18',
  mtu: 1450,
};
const NEIGH: VxlanCommand = { kind: 'neigh.replace', dev: VXLAN_DEVICE, address: '169.254.64.2', mac: '02:cd:00:00:00:02' };
const FDB: VxlanCommand = { kind: 'fdb.replace', dev: VXLAN_DEVICE, mac: '02:cd:00:00:00:02', dst: '203.0.113.18' };

/** A runner that records what it is given and answers from a script. */
function scripted(answers: Record<string, Partial<CommandResult>>) {
  const calls: Array<{ argv: string; input: string }> = [];
  const runner = async (argv: readonly string[], options?: { input?: string }) => {
    const key = argv.join(' ');
    calls.push({ argv: key, input: options?.input ?? '' });
    const a = answers[key] ?? { ok: true };
    return { ok: a.ok ?? true, exitCode: a.ok === false ? 1 : 0, stdout: a.stdout ?? '', stderr: a.stderr ?? '', durationMs: 0 };
  };
  return { calls, runner };
}

const SHOW = `ip -d -json address show dev ${VXLAN_DEVICE}`;
const ABSENT = { ok: false, stderr: `Device "${VXLAN_DEVICE}" does not exist.\n` };

describe('VXLAN driver: ip -batch and bridge -batch', () => {
  it('creates the device, its neighbour and fdb entries in one ip batch and one bridge batch', async () => {
    const { calls, runner } = scripted({ [SHOW]: ABSENT });
    const results = await createVxlanDriver({ runner }).apply([FDB, NEIGH, DEVICE]);
    expect(results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(calls.map((c) => c.argv)).toEqual([SHOW, 'ip -force -batch -', 'bridge -force -batch -']);
    expect(calls[1]!.input).toBe(
      [
        'link add crossdock.vx type vxlan id 7800 local 203.0.113.2 dstport 4789 nolearning',
        'link set dev crossdock.vx address 02:cd:00:00:00:01 mtu 1450 alias crossdock up',
        'address replace 169.254.64.1/18 dev crossdock.vx',
        'neigh replace 169.254.64.2 lladdr 02:cd:00:00:00:02 dev crossdock.vx nud permanent',
        '',
      ].join('\n'),
    );
    expect(calls[2]!.input).toBe('fdb replace 02:cd:00:00:00:02 dev crossdock.vx dst 203.0.113.18 self permanent\n');
  });

  it('leaves a device of that name that crossdock did not make alone', async () => {
    const foreign = JSON.stringify([
      { ifname: VXLAN_DEVICE, mtu: 1500, address: '02:00:00:00:00:07', flags: ['UP'], linkinfo: { info_kind: 'vxlan', info_data: { id: 1 } } },
    ]);
    const { calls, runner } = scripted({ [SHOW]: { stdout: foreign } });
    const results = await createVxlanDriver({ runner }).apply([DEVICE, NEIGH]);
    expect(results.every((r) => !r.ok)).toBe(true);
    expect(results[0]!.stderr).toMatch(/did not make \(its alias is unset\)/);
    expect(calls.map((c) => c.argv)).toEqual([SHOW]);
  });

  it('makes the device again when its VNI, port or local address changed, and keeps only its own address', async () => {
    const fake = new FakeVxlanDriver();
    await fake.apply([DEVICE, NEIGH, FDB]);
    fake.device!.addresses.push('169.254.0.9/18');
    await fake.apply([DEVICE]);
    expect(fake.device!.addresses).toEqual(['169.254.64.1/18']);
    expect(fake.neighbours.size).toBe(1);
    await fake.apply([{ ...DEVICE, local: '203.0.113.3' }]);
    expect(fake.device).toMatchObject({ local: '203.0.113.3', vni: 7800, alias: 'crossdock', up: true, mtu: 1450, mac: '02:cd:00:00:00:01' });
    // made again: its entries went with the old one
    expect(fake.neighbours.size).toBe(0);
  });

  it('a removal that finds nothing to remove succeeds', async () => {
    const fake = new FakeVxlanDriver();
    const gone = await fake.apply([
      { kind: 'neigh.delete', dev: VXLAN_DEVICE, address: '169.254.64.2' },
      { kind: 'fdb.delete', dev: VXLAN_DEVICE, mac: '02:cd:00:00:00:02' },
      { kind: 'vxlan.device.delete', name: VXLAN_DEVICE },
    ]);
    expect(gone.map((r) => r.ok)).toEqual([true, true, true]);
    await fake.apply([DEVICE]);
    const again = await fake.apply([
      { kind: 'neigh.delete', dev: VXLAN_DEVICE, address: '169.254.64.2' },
      { kind: 'fdb.delete', dev: VXLAN_DEVICE, mac: '02:cd:00:00:00:02' },
    ]);
    expect(again.map((r) => [r.ok, r.stdout])).toEqual([
      [true, 'already gone\n'],
      [true, 'already gone\n'],
    ]);
  });

  it('a neighbour for a device that does not exist is refused, not attempted', async () => {
    const { calls, runner } = scripted({ [SHOW]: ABSENT });
    const [result] = await createVxlanDriver({ runner }).apply([NEIGH]);
    expect(result!.ok).toBe(false);
    expect(result!.stderr).toMatch(/crossdock\.vx does not exist/);
    expect(calls).toHaveLength(1);
  });

  it('refuses an invalid command before running anything', async () => {
    const { calls, runner } = scripted({});
    const results = await createVxlanDriver({ runner }).apply([{ ...FDB, mac: '01:00:5e:00:00:01' } as VxlanCommand]);
    expect(results[0]!.ok).toBe(false);
    expect(results[0]!.stderr).toMatch(/multicast MAC/);
    expect(calls).toHaveLength(0);
  });
});

describe('VXLAN driver: observe', () => {
  it('parses the device, its permanent neighbours and its remote fdb entries as iproute2 prints them', async () => {
    const { runner } = scripted({
      [SHOW]: {
        stdout: JSON.stringify([
          {
            ifname: VXLAN_DEVICE,
            flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
            mtu: 1450,
            address: '02:cd:00:00:00:01',
            linkinfo: { info_kind: 'vxlan', info_data: { id: 7800, local: '203.0.113.1', port: 4789, learning: false } },
            ifalias: 'crossdock',
            addr_info: [
              { family: 'inet', local: '169.254.64.1', prefixlen: 18 },
              { family: 'inet6', local: 'fe80::cd:ff:fe00:1', prefixlen: 64 },
            ],
          },
        ]),
      },
      [`ip -4 -json neigh show dev ${VXLAN_DEVICE} nud permanent`]: {
        stdout: JSON.stringify([{ dst: '169.254.64.2', lladdr: '02:cd:00:00:00:02', state: ['PERMANENT'] }]),
      },
      [`bridge -json fdb show dev ${VXLAN_DEVICE}`]: {
        stdout: JSON.stringify([
          { mac: '02:cd:00:00:00:02', dst: '203.0.113.18', flags: ['self'], state: 'permanent' },
          { mac: '02:cd:00:00:00:01', flags: ['self'], state: 'permanent' },
        ]),
      },
    });
    expect(await createVxlanDriver({ runner }).observe()).toStrictEqual({
      device: {
        name: VXLAN_DEVICE,
        alias: 'crossdock',
        vni: 7800,
        port: 4789,
        local: '203.0.113.1',
        learning: false,
        mac: '02:cd:00:00:00:01',
        mtu: 1450,
        up: true,
        addresses: ['169.254.64.1/18'],
      },
      neighbours: [{ address: '169.254.64.2', mac: '02:cd:00:00:00:02' }],
      fdb: [{ mac: '02:cd:00:00:00:02', dst: '203.0.113.18' }],
    });
  });

  it('reports no device when there is none', async () => {
    const { runner } = scripted({ [SHOW]: ABSENT });
    expect(await createVxlanDriver({ runner }).observe()).toStrictEqual({ device: null, neighbours: [], fdb: [] });
  });
});

describe('the link monitor: which lines are changes to look at', () => {
  it("announces the host's addresses and crossdock's device, and leaves Docker's bridges to the engine's own event", () => {
    expect(isWatchedLinkEvent('2: eth0    inet 198.51.100.11/24 brd 198.51.100.255 scope 0 eth0')).toBe(true);
    expect(isWatchedLinkEvent('Deleted 2: eth0    inet 198.51.100.11/24 brd 198.51.100.255 scope 0 eth0')).toBe(true);
    expect(isWatchedLinkEvent(`5: ${VXLAN_DEVICE}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UNKNOWN group 0`)).toBe(true);
    // `docker network rm`: the address goes before the network leaves the engine's list
    expect(isWatchedLinkEvent('Deleted 4: br-26365e32de55    inet 10.100.0.1/24 brd 10.100.0.255 scope 0 br-26365e32de55')).toBe(false);
    expect(isWatchedLinkEvent('4: br-26365e32de55    inet 10.100.0.1/24 brd 10.100.0.255 scope 0 br-26365e32de55')).toBe(false);
    expect(isWatchedLinkEvent('3: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope 0 docker0')).toBe(false);
    // a bridge of another name is the host's, not Docker's
    expect(isWatchedLinkEvent('6: br-lan    inet 192.0.2.1/24 brd 192.0.2.255 scope 0 br-lan')).toBe(true);
    expect(isWatchedLinkEvent('10.1.0.7 dev crossdock.vx lladdr 02:00:00:00:00:07 INCOMPLETE')).toBe(false);
  });
});
