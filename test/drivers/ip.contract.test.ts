// One contract for every IpDriver: the fake (the real driver over an emulated `ip`) and the real
// one in a throwaway network namespace must give the same results, messages included, so the
// fake the other suites rely on cannot drift from the machine.
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RouteDelete, RouteReplace } from '@crossdock/shared';
import type { ForeignRoute } from '../../executor/src/drivers/emulated-ip.ts';
import { FakeIpDriver } from '../../executor/src/drivers/fake.ts';
import { createIpDriver, type IpDriver, type RouteCommand } from '../../executor/src/drivers/ip.ts';
import { createRunner, type Runner } from '../../executor/src/drivers/run.ts';
import { cleanLeftoverNamespaces, createNamespace, deleteNamespace, inNs } from '../support/netns.ts';
import { missing } from '../support/requirements.ts';

/** A host with eth0 at 198.51.100.11/24, as the contract's cases expect. */
interface IpHost {
  driver: IpDriver;
  /** every process the driver started, as argv text */
  processes: string[];
  addForeignRoute(route: ForeignRoute): void;
  /** the main table as `ip -N -4 -json route show` lists it */
  table(): Promise<Array<Record<string, unknown>>>;
  close(): void;
}

interface Subject {
  name: string;
  /** why it cannot run here, or null */
  skip: string | null;
  open(): Promise<IpHost>;
}

function recording(runner: Runner, processes: string[]): Runner {
  return (argv, options) => {
    processes.push(argv.join(' '));
    return runner(argv, options);
  };
}

const fake: Subject = {
  name: 'fake',
  skip: null,
  async open() {
    const driver = new FakeIpDriver();
    const processes: string[] = [];
    driver.runner = recording(driver.runner, processes);
    return {
      driver,
      processes,
      addForeignRoute: (route) => void driver.foreignRoutes.set(route.dst, route),
      table: async () => JSON.parse((await driver.runner(['ip', '-N', '-4', '-json', 'route', 'show', 'table', 'main'])).stdout),
      close: () => {},
    };
  },
};

const real: Subject = {
  name: 'real, in a network namespace (needs root, netns)',
  skip: missing('root', 'netns'),
  async open() {
    const ns = createNamespace('ip');
    inNs(ns, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
    inNs(ns, ['ip', 'link', 'set', 'eth0', 'up']);
    inNs(ns, ['ip', 'link', 'set', 'eth0p', 'up']);
    inNs(ns, ['ip', 'address', 'add', '198.51.100.11/24', 'dev', 'eth0']);
    const processes: string[] = [];
    return {
      driver: createIpDriver({ runner: recording(createRunner({ netns: ns }), processes) }),
      processes,
      addForeignRoute: ({ dst, via, dev, protocol, metric }) =>
        void inNs(ns, [
          'ip',
          'route',
          'add',
          dst,
          ...(via ? ['via', via] : []),
          'dev',
          dev,
          ...(protocol ? ['proto', String(protocol)] : []),
          ...(metric ? ['metric', String(metric)] : []),
        ]),
      table: async () => JSON.parse(inNs(ns, ['ip', '-N', '-4', '-json', 'route', 'show', 'table', 'main'])),
      close: () => deleteNamespace(ns),
    };
  },
};

const replace = (dst: string, via = '198.51.100.12', dev = 'eth0'): RouteReplace => ({ kind: 'route.replace', dst, via, dev });
const del = (dst: string): RouteDelete => ({ kind: 'route.delete', dst });
const summary = (applied: number, failed: number, gone: number) =>
  `${applied} route commands applied, ${failed} failed, ${gone} deletes found the route already gone\n`;
const STATIC_PROTOCOL = 4;

for (const subject of [fake, real]) {
  describe.skipIf(subject.skip)(`IpDriver contract: ${subject.name}`, () => {
    let host: IpHost;
    let driver: IpDriver;
    beforeAll(() => {
      if (subject === real) cleanLeftoverNamespaces();
    });
    beforeEach(async () => {
      host = await subject.open();
      driver = host.driver;
    });
    afterEach(() => host.close());

    /** The routes nobody asked crossdock to touch. */
    const foreign = async () => (await host.table()).filter((r) => r.protocol !== '252');

    it("applies a job's routes with one read and one ip -batch, and observes them in the kernel's order", async () => {
      const job = [replace('10.2.0.0/24'), replace('10.1.0.0/16', '198.51.100.13'), replace('10.1.0.0/24'), replace('9.0.0.0/8'), replace('10.1.0.7/32')];
      const result = await driver.applyRoutes(job);
      expect(result).toMatchObject({ ok: true, exitCode: 0, stdout: summary(5, 0, 0), stderr: '' });
      expect(host.processes).toEqual(['ip -N -4 -json route show table main', 'ip -force -batch -']);
      // by destination address, the longer prefix first
      expect(await driver.observeRoutes()).toEqual([
        { dst: '9.0.0.0/8', via: '198.51.100.12', dev: 'eth0' },
        { dst: '10.1.0.0/24', via: '198.51.100.12', dev: 'eth0' },
        { dst: '10.1.0.0/16', via: '198.51.100.13', dev: 'eth0' },
        { dst: '10.1.0.7/32', via: '198.51.100.12', dev: 'eth0' },
        { dst: '10.2.0.0/24', via: '198.51.100.12', dev: 'eth0' },
      ]);
    });

    it('applies 1,000 routes in one batch; the same batch again changes nothing', async () => {
      const thousand = Array.from({ length: 1000 }, (_, i) => replace(`10.${100 + (i >> 8)}.${i & 255}.0/24`, `198.51.100.${12 + (i % 3)}`));
      const started = performance.now();
      expect(await driver.applyRoutes(thousand)).toMatchObject({ ok: true, stdout: summary(1000, 0, 0) });
      expect(performance.now() - started).toBeLessThan(2_000);
      const observed = await driver.observeRoutes();
      expect(new Set(observed.map((r) => `${r.dst} ${r.via} ${r.dev}`))).toEqual(new Set(thousand.map((r) => `${r.dst} ${r.via} ${r.dev}`)));
      expect(await driver.applyRoutes(thousand)).toMatchObject({ ok: true, stdout: summary(1000, 0, 0) });
      expect(await driver.observeRoutes()).toEqual(observed);
      expect(host.processes.filter((p) => p.includes('-batch'))).toHaveLength(2);
    });

    it('replaces a route in place when its gateway changes', async () => {
      await driver.applyRoutes([replace('10.2.0.0/24')]);
      expect((await driver.applyRoutes([replace('10.2.0.0/24', '198.51.100.20')])).ok).toBe(true);
      expect(await driver.observeRoutes()).toEqual([{ dst: '10.2.0.0/24', via: '198.51.100.20', dev: 'eth0' }]);
    });

    it('deletes its routes; a delete of a route that is gone, or was never its own, is no error and runs nothing', async () => {
      host.addForeignRoute({ dst: '10.9.0.0/24', via: '198.51.100.1', dev: 'eth0', protocol: STATIC_PROTOCOL });
      await driver.applyRoutes([replace('10.2.0.0/24'), replace('10.3.0.0/24')]);
      const result = await driver.applyRoutes([del('10.2.0.0/24'), del('10.4.0.0/24'), del('10.9.0.0/24')]);
      expect(result).toMatchObject({ ok: true, exitCode: 0, stdout: summary(1, 0, 2), stderr: '' });
      expect(await driver.observeRoutes()).toEqual([{ dst: '10.3.0.0/24', via: '198.51.100.12', dev: 'eth0' }]);
      host.processes.length = 0;
      expect(await driver.applyRoutes([del('10.2.0.0/24')])).toMatchObject({ ok: true, exitCode: null, stdout: summary(0, 0, 1), stderr: '' });
      expect(host.processes).toEqual(['ip -N -4 -json route show table main']);
      expect((await foreign()).map((r) => r.dst)).toContain('10.9.0.0/24');
    });

    it('refuses to replace a route it did not make, whatever its protocol, applies the others, and leaves every foreign route as it was', async () => {
      host.addForeignRoute({ dst: '10.9.0.0/24', via: '198.51.100.1', dev: 'eth0', protocol: STATIC_PROTOCOL });
      host.addForeignRoute({ dst: '203.0.113.0/24', via: '198.51.100.1', dev: 'eth0' });
      // another metric is another route to `replace`: ours goes in beside it
      host.addForeignRoute({ dst: '10.100.5.0/24', via: '198.51.100.1', dev: 'eth0', metric: 50 });
      const before = await foreign();
      const result = await driver.applyRoutes([
        replace('10.9.0.0/24'),
        replace('203.0.113.0/24'),
        replace('198.51.100.0/24'),
        replace('10.100.5.0/24'),
        replace('10.7.0.0/24'),
      ]);
      const refusal = (dst: string, theirs: string) =>
        `route replace ${dst} via 198.51.100.12 dev eth0 proto 252: refused: ${dst} already has a route crossdock did not make (${theirs}); remove it by hand if crossdock should manage ${dst}\n`;
      expect(result).toEqual({
        ok: false,
        exitCode: 0,
        stdout: summary(2, 0, 0),
        stderr:
          refusal('10.9.0.0/24', 'via 198.51.100.1 dev eth0 proto 4') +
          refusal('203.0.113.0/24', 'via 198.51.100.1 dev eth0 proto boot') +
          refusal('198.51.100.0/24', 'dev eth0 proto 2'),
        durationMs: expect.any(Number),
      });
      expect((await driver.observeRoutes()).map((r) => r.dst)).toEqual(['10.7.0.0/24', '10.100.5.0/24']);
      expect(await foreign()).toEqual(before);
    });

    it('reports each failing line by its command and applies the lines around it', async () => {
      const result = await driver.applyRoutes([replace('10.6.0.0/24', '10.66.0.1'), replace('10.6.1.0/24'), replace('10.6.2.0/24', '198.51.100.12', 'eth9')]);
      expect(result).toEqual({
        ok: false,
        exitCode: 1,
        stdout: summary(1, 2, 0),
        stderr:
          'route replace 10.6.0.0/24 via 10.66.0.1 dev eth0 proto 252: Error: Nexthop has invalid gateway.\n' +
          'route replace 10.6.2.0/24 via 198.51.100.12 dev eth9 proto 252: Cannot find device "eth9"\n',
        durationMs: expect.any(Number),
      });
      expect(await driver.observeRoutes()).toEqual([{ dst: '10.6.1.0/24', via: '198.51.100.12', dev: 'eth0' }]);
    });

    it('refuses an invalid command and runs nothing', async () => {
      const result = await driver.applyRoutes([replace('10.2.0.0/24'), replace('10.3.0.0/24', '198.51.100.12', 'eth0 table 5') as RouteCommand]);
      expect(result).toMatchObject({ ok: false, exitCode: null, stdout: '' });
      expect(result.stderr).toContain('dev: interface name "eth0 table 5" contains whitespace');
      expect(host.processes).toEqual([]);
    });

    it('observes interfaces with their IPv4 addresses', async () => {
      const interfaces = await driver.observeInterfaces();
      expect(interfaces).toEqual(
        expect.arrayContaining([
          { name: 'lo', mtu: 65536, addresses: ['127.0.0.1/8'] },
          { name: 'eth0', mtu: 1500, addresses: ['198.51.100.11/24'] },
        ]),
      );
    });
  });
}
