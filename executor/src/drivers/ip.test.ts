// The ip driver's decisions against a scripted runner. Against the real tool, next to the fake:
// test/drivers/ip.contract.test.ts.
import { describe, expect, it } from 'vitest';
import type { CommandResult, RouteDelete, RouteReplace } from '@crossdock/shared';
import { createIpDriver, parseBatchErrors, type RouteCommand } from './ip.ts';
import { netnsPrefix, type Runner } from './run.ts';

const ok = (stdout = ''): CommandResult => ({ ok: true, exitCode: 0, stdout, stderr: '', durationMs: 1 });
const failed = (stderr: string, exitCode = 1): CommandResult => ({ ok: false, exitCode, stdout: '', stderr, durationMs: 1 });

/** A runner answering from a script, recording every argv and stdin. */
function scripted(answers: ((argv: readonly string[]) => CommandResult | undefined)[]) {
  const calls: { argv: readonly string[]; input: string | undefined }[] = [];
  const runner: Runner = async (argv, options) => {
    calls.push({ argv, input: options?.input });
    for (const answer of answers) {
      const result = answer(argv);
      if (result) return result;
    }
    throw new Error(`unexpected ${argv.join(' ')}`);
  };
  return { runner, calls };
}
const onRouteShow = (routes: unknown[]) => (argv: readonly string[]) =>
  argv.includes('route') && argv.includes('show') ? ok(JSON.stringify(routes)) : undefined;
const onBatch = (result: CommandResult) => (argv: readonly string[]) => (argv.includes('-batch') ? result : undefined);

const replace = (dst: string, via = '198.51.100.12', dev = 'eth0'): RouteReplace => ({ kind: 'route.replace', dst, via, dev });
const del = (dst: string): RouteDelete => ({ kind: 'route.delete', dst });

describe('parseBatchErrors', () => {
  it('attributes each message to the line ip names after it', () => {
    const stderr = 'RTNETLINK answers: No such process\nCommand failed -:3\nError: Nexthop has invalid gateway.\nCommand failed -:4\n';
    expect([...parseBatchErrors(stderr)]).toEqual([
      [3, 'RTNETLINK answers: No such process'],
      [4, 'Error: Nexthop has invalid gateway.'],
    ]);
  });
  it('is empty without failures', () => expect(parseBatchErrors('').size).toBe(0));
});

describe('IpDriver with a scripted runner', () => {
  it('observes only our routes, normalizing /32 and routes without a gateway', async () => {
    const { runner, calls } = scripted([
      onRouteShow([
        { dst: '10.2.0.0/24', gateway: '198.51.100.12', dev: 'eth0', flags: [] },
        { dst: '10.2.1.1', gateway: '198.51.100.12', dev: 'eth0', flags: [] },
        { dst: '10.2.2.0/24', dev: 'eth1', scope: 'link', flags: [] },
      ]),
    ]);
    const routes = await createIpDriver({ runner }).observeRoutes();
    expect(routes).toEqual([
      { dst: '10.2.0.0/24', via: '198.51.100.12', dev: 'eth0' },
      { dst: '10.2.1.1/32', via: '198.51.100.12', dev: 'eth0' },
      { dst: '10.2.2.0/24', via: null, dev: 'eth1' },
    ]);
    expect(calls[0]?.argv).toEqual(['ip', '-N', '-4', '-json', 'route', 'show', 'table', 'main', 'proto', '252']);
  });

  it('sends every command in one batch tagged with our protocol', async () => {
    const { runner, calls } = scripted([onRouteShow([{ dst: '10.3.0.0/24', gateway: '198.51.100.13', dev: 'eth0', protocol: '252' }]), onBatch(ok())]);
    const result = await createIpDriver({ runner }).applyRoutes([replace('10.2.0.0/24'), del('10.3.0.0/24')]);
    expect(result.ok).toBe(true);
    expect(calls).toHaveLength(2);
    expect(calls[1]).toEqual({
      argv: ['ip', '-force', '-batch', '-'],
      input: 'route replace 10.2.0.0/24 via 198.51.100.12 dev eth0 proto 252\nroute delete 10.3.0.0/24 proto 252\n',
    });
  });

  it('skips deletes of routes that are already gone, and runs nothing when nothing is left', async () => {
    const { runner, calls } = scripted([onRouteShow([])]);
    const result = await createIpDriver({ runner }).applyRoutes([del('10.3.0.0/24'), del('10.4.0.0/24')]);
    expect(result).toMatchObject({ ok: true, exitCode: null, stderr: '' });
    expect(result.stdout).toContain('2 deletes found the route already gone');
    expect(calls).toHaveLength(1);
  });

  it('keeps a delete that follows a replace of the same destination in the batch', async () => {
    const { runner, calls } = scripted([onRouteShow([]), onBatch(ok())]);
    await createIpDriver({ runner }).applyRoutes([replace('10.2.0.0/24'), del('10.2.0.0/24')]);
    expect(calls[1]?.input?.split('\n')).toHaveLength(3);
  });

  it('refuses to replace a route crossdock did not make, and applies the rest', async () => {
    const { runner, calls } = scripted([
      onRouteShow([
        { dst: '10.9.0.0/24', gateway: '198.51.100.1', dev: 'eth0', protocol: '4' },
        { dst: '10.8.0.0/24', gateway: '198.51.100.1', dev: 'eth0', metric: 100 },
      ]),
      onBatch(ok()),
    ]);
    const result = await createIpDriver({ runner }).applyRoutes([replace('10.9.0.0/24'), replace('10.8.0.0/24'), replace('10.2.0.0/24')]);
    expect(result.ok).toBe(false);
    expect(result.stderr).toBe(
      'route replace 10.9.0.0/24 via 198.51.100.12 dev eth0 proto 252: refused: 10.9.0.0/24 already has a route crossdock did not make ' +
        '(via 198.51.100.1 dev eth0 proto 4); remove it by hand if crossdock should manage 10.9.0.0/24\n',
    );
    // a foreign route with another metric is not what `replace` would overwrite
    expect(calls[1]?.input).toBe(
      'route replace 10.8.0.0/24 via 198.51.100.12 dev eth0 proto 252\nroute replace 10.2.0.0/24 via 198.51.100.12 dev eth0 proto 252\n',
    );
  });

  it('reports failing lines by their command, and tolerates a delete that lost a race', async () => {
    const { runner } = scripted([
      onRouteShow([{ dst: '10.3.0.0/24', gateway: '198.51.100.13', dev: 'eth0', protocol: '252' }]),
      onBatch(failed('Error: Nexthop has invalid gateway.\nCommand failed -:2\nRTNETLINK answers: No such process\nCommand failed -:3\n')),
    ]);
    const result = await createIpDriver({ runner }).applyRoutes([replace('10.2.0.0/24'), replace('10.5.0.0/24', '203.0.113.1'), del('10.3.0.0/24')]);
    expect(result).toMatchObject({
      ok: false,
      exitCode: 1,
      stdout: '1 route commands applied, 1 failed, 1 deletes found the route already gone\n',
      stderr: 'route replace 10.5.0.0/24 via 203.0.113.1 dev eth0 proto 252: Error: Nexthop has invalid gateway.\n',
    });
  });

  it('is ok when the only failure is a delete of a route that vanished meanwhile', async () => {
    const { runner } = scripted([
      onRouteShow([{ dst: '10.3.0.0/24', gateway: '198.51.100.13', dev: 'eth0', protocol: '252' }]),
      onBatch(failed('RTNETLINK answers: No such process\nCommand failed -:1\n')),
    ]);
    expect((await createIpDriver({ runner }).applyRoutes([del('10.3.0.0/24')])).ok).toBe(true);
  });

  it('passes on an error ip gives for no particular line', async () => {
    const { runner } = scripted([onRouteShow([]), onBatch(failed('nsenter: cannot open /run/netns/x\n', 1))]);
    const result = await createIpDriver({ runner }).applyRoutes([replace('10.2.0.0/24')]);
    expect(result).toMatchObject({ ok: false, stderr: 'nsenter: cannot open /run/netns/x\n' });
  });

  it('re-validates commands and runs nothing for an invalid one', async () => {
    const { runner, calls } = scripted([]);
    const result = await createIpDriver({ runner }).applyRoutes([replace('10.2.0.0/24', '198.51.100.12', 'eth0 table 5') as RouteCommand]);
    expect(result.ok).toBe(false);
    expect(result.stderr).toContain('dev: interface name "eth0 table 5" contains whitespace');
    expect(calls).toHaveLength(0);
  });

  it('observes interfaces with their IPv4 addresses', async () => {
    const { runner } = scripted([
      () =>
        ok(
          JSON.stringify([
            {
              ifname: 'lo',
              mtu: 65536,
              addr_info: [
                { family: 'inet', local: '127.0.0.1', prefixlen: 8 },
                { family: 'inet6', local: '::1', prefixlen: 128 },
              ],
            },
            { ifname: 'eth0', mtu: 1500, addr_info: [{ family: 'inet', local: '198.51.100.11', prefixlen: 24 }] },
            { ifname: 'br0', mtu: 1500, addr_info: [] },
          ]),
        ),
    ]);
    expect(await createIpDriver({ runner }).observeInterfaces()).toEqual([
      { name: 'lo', mtu: 65536, addresses: ['127.0.0.1/8'] },
      { name: 'eth0', mtu: 1500, addresses: ['198.51.100.11/24'] },
      { name: 'br0', mtu: 1500, addresses: [] },
    ]);
  });

  it('returns a failed result, running nothing, when it cannot read the table before a batch', async () => {
    const { runner, calls } = scripted([() => failed('Cannot open netlink socket\n')]);
    const result = await createIpDriver({ runner }).applyRoutes([replace('10.2.0.0/24')]);
    expect(result).toMatchObject({
      ok: false,
      exitCode: null,
      stderr: 'ip -N -4 -json route show table main failed: Cannot open netlink socket; no route command was run\n',
    });
    expect(calls).toHaveLength(1);
  });

  it('throws when it cannot observe', async () => {
    const { runner } = scripted([() => failed('Cannot open netlink socket\n')]);
    await expect(createIpDriver({ runner }).observeRoutes()).rejects.toThrow('Cannot open netlink socket');
  });
});

describe('netnsPrefix', () => {
  it('enters the namespace with nsenter', () => expect(netnsPrefix('cdtest-a')).toEqual(['nsenter', '--net=/run/netns/cdtest-a']));
  it.each(['', '..', 'a/b', 'a b', '../../proc/1/ns/net'])('refuses %j', (name) => expect(() => netnsPrefix(name)).toThrow());
});
