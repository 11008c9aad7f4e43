// One contract for every IptablesDriver: the fake (the real driver over emulated iptables-save
// and iptables-restore) and the real one, with each backend installed, in a throwaway network
// namespace must give the same results, messages included, so the fake cannot drift.
import { existsSync } from 'node:fs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { renderRule, type CommandResult, type FirewallChain, type FirewallJump, type FirewallTable } from '@crossdock/shared';
import { FakeIptablesDriver } from '../../executor/src/drivers/fake.ts';
import { createIptablesDriver, type IptablesDriver, type IptablesDriverOptions } from '../../executor/src/drivers/iptables.ts';
import { createRunner, type Runner } from '../../executor/src/drivers/run.ts';
import { cleanLeftoverNamespaces, createNamespace, deleteNamespace } from '../support/netns.ts';
import { missing } from '../support/requirements.ts';

type Family = NonNullable<IptablesDriverOptions['family']>;

/** A host as dockerd leaves it (FORWARD policy DROP, DOCKER-USER), plus an operator's rules. */
interface FirewallHost {
  driver: IptablesDriver;
  family: Family;
  /** every process the driver started, as argv text */
  processes: string[];
  /** runs the family's own tools, as an operator would */
  tool(argv: string[], input?: string): Promise<CommandResult>;
  /** The next iptables-restore the driver runs fails in this table (a rule there jumps to a chain that does not exist). */
  failNextRestoreIn(table: FirewallTable): void;
  close(): void;
}

interface Subject {
  name: string;
  backend: 'nf_tables' | 'legacy';
  skip: string | null;
  open(): Promise<FirewallHost>;
}

const DOCKER_HOST = [
  '*filter',
  ':FORWARD DROP [0:0]',
  ':DOCKER-USER - [0:0]',
  ':DOCKER - [0:0]',
  '-A FORWARD -j DOCKER-USER',
  '-A FORWARD -s 203.0.113.0/24 -m comment --comment "operator rule" -j ACCEPT',
  '-A FORWARD -o docker0 -j DOCKER',
  '-A DOCKER-USER -j RETURN',
  'COMMIT',
  '*nat',
  '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE',
  'COMMIT',
  '',
].join('\n');

/** The driver's runner, recording each process and failing the next restore where asked. */
function instrumented(tools: Runner) {
  const processes: string[] = [];
  let failIn: FirewallTable | null = null;
  const runner: Runner = (argv, options) => {
    processes.push(argv.join(' '));
    if (failIn !== null && argv[0]?.endsWith('-restore') && options?.input !== undefined) {
      const table = failIn;
      failIn = null;
      const from = table === 'filter' ? 'FORWARD' : 'POSTROUTING';
      // In place of the block's last line before COMMIT: the driver counts lines to tell which table failed.
      const blocks = options.input
        .split(/(?=^\*)/m)
        .map((block) => (block.startsWith(`*${table}\n`) ? block.replace(/[^\n]*\nCOMMIT\n$/, `-A ${from} -j CROSSDOCK-NOPE\nCOMMIT\n`) : block));
      return tools(argv, { ...options, input: blocks.join('') });
    }
    return tools(argv, options);
  };
  return { runner, processes, failNextRestoreIn: (table: FirewallTable) => void (failIn = table) };
}

const fake: Subject = {
  name: 'fake',
  backend: 'nf_tables',
  skip: null,
  async open() {
    const driver = new FakeIptablesDriver({ dockerUser: false });
    const tools = driver.runner;
    const { runner, processes, failNextRestoreIn } = instrumented(tools);
    driver.runner = runner;
    const host = {
      driver,
      family: 'iptables' as const,
      processes,
      failNextRestoreIn,
      tool: (argv: string[], input?: string) => tools(argv, { input }),
      close: () => {},
    };
    await restoreOrThrow(host, DOCKER_HOST);
    return host;
  },
};

function real(family: Family, backend: Subject['backend']): Subject {
  const installed = existsSync(`/usr/sbin/${family}-restore`) ? null : `${family} is not installed`;
  return {
    name: `real ${family}, in a network namespace (needs root, netns, iptables)`,
    backend,
    skip: missing('root', 'netns', 'iptables') ?? installed,
    async open() {
      const ns = createNamespace('ipt');
      const tools = createRunner({ netns: ns });
      const { runner, processes, failNextRestoreIn } = instrumented(tools);
      const host = {
        driver: createIptablesDriver({ family, runner }),
        family,
        processes,
        failNextRestoreIn,
        tool: (argv: string[], input?: string) => tools(argv, { input }),
        close: () => deleteNamespace(ns),
      };
      await restoreOrThrow(host, DOCKER_HOST);
      return host;
    },
  };
}

async function restoreOrThrow(host: Pick<FirewallHost, 'tool' | 'family'>, text: string): Promise<void> {
  const result = await host.tool([`${host.family}-restore`, '--noflush'], text);
  if (!result.ok) throw new Error(`${host.family}-restore failed: ${result.stderr}`);
}

const filterChain: FirewallChain = {
  kind: 'firewall.chain',
  table: 'filter',
  chain: 'CROSSDOCK-FORWARD',
  rules: [
    { source: '10.1.0.0/24', destination: '10.100.0.0/16', comment: 'crossdock peer', target: 'ACCEPT' },
    { source: '10.100.0.0/16', destination: '10.1.0.0/24', outInterface: 'br-cd', target: 'ACCEPT' },
    { inInterface: 'eth0', comment: 'lab:h1/x.y', target: 'RETURN' },
  ],
};
const natChain: FirewallChain = {
  kind: 'firewall.chain',
  table: 'nat',
  chain: 'CROSSDOCK-POSTROUTING',
  rules: [{ source: '10.1.0.0/24', destination: '10.100.0.0/16', comment: 'no masquerade', target: 'ACCEPT' }],
};
const forwardJump: FirewallJump = { kind: 'firewall.jump', table: 'filter', from: 'DOCKER-USER', to: 'CROSSDOCK-FORWARD', position: 1 };
const natJump: FirewallJump = { kind: 'firewall.jump', table: 'nat', from: 'POSTROUTING', to: 'CROSSDOCK-POSTROUTING', position: 1 };
const rendered = (c: FirewallChain) => c.rules.map((rule) => renderRule(c.chain, rule));
const ok = (stdout: string) => ({ ok: true, exitCode: 0, stdout, stderr: '', durationMs: expect.any(Number) });
const ALL_IN_PLACE = [
  { table: 'filter', from: 'DOCKER-USER', to: 'CROSSDOCK-FORWARD', position: 1 },
  { table: 'nat', from: 'POSTROUTING', to: 'CROSSDOCK-POSTROUTING', position: 1 },
];

const subjects = [fake, real('iptables', 'nf_tables'), real('iptables-legacy', 'legacy')];

for (const subject of subjects) {
  describe.skipIf(subject.skip)(`IptablesDriver contract: ${subject.name}`, () => {
    let host: FirewallHost;
    let driver: IptablesDriver;
    /** the ruleset without comments, for before/after comparisons */
    const ruleset = async () =>
      (await host.tool([`${host.family}-save`])).stdout
        .split('\n')
        .filter((line) => !line.startsWith('#'))
        .join('\n');
    let docker = '';

    beforeAll(() => {
      if (subject !== fake) cleanLeftoverNamespaces();
    });
    beforeEach(async () => {
      host = await subject.open();
      driver = host.driver;
      docker = await ruleset();
      host.processes.length = 0;
    });
    afterEach(() => host.close());

    it('observes the host before crossdock touched it', async () => {
      expect(await driver.observe()).toEqual({
        backend: subject.backend,
        chains: [],
        jumps: [],
        builtinChains: [
          { table: 'filter', name: 'DOCKER-USER' },
          { table: 'filter', name: 'FORWARD' },
          { table: 'nat', name: 'POSTROUTING' },
        ],
        forwardPolicy: 'DROP',
        // what VXLAN's firewall chain depends on: a host whose INPUT drops gets one (planner/desired.ts)
        inputPolicy: 'ACCEPT',
      });
    });

    it('applies chains and jumps with one read and one iptables-restore; observe reads back renderRule exactly', async () => {
      const result = await driver.applyFirewall([filterChain, natChain], [forwardJump, natJump]);
      expect(result).toEqual({ chains: ok('[filter] ok\n[nat] ok\n'), jumps: [ok('[filter] ok\n'), ok('[nat] ok\n')] });
      expect(host.processes).toEqual([`${host.family}-save`, `${host.family}-restore --noflush --wait=10`]);
      const observed = await driver.observe();
      expect(observed.chains).toEqual([
        { table: 'filter', name: 'CROSSDOCK-FORWARD', rules: rendered(filterChain) },
        { table: 'nat', name: 'CROSSDOCK-POSTROUTING', rules: rendered(natChain) },
      ]);
      expect(observed.jumps).toEqual(ALL_IN_PLACE);
    });

    it('is idempotent: the same job again replaces the chains with themselves and leaves the jumps alone', async () => {
      await driver.applyFirewall([filterChain, natChain], [forwardJump, natJump]);
      const before = await ruleset();
      const again = await driver.applyFirewall([filterChain, natChain], [forwardJump, natJump]);
      expect(again.jumps).toEqual([
        {
          ok: true,
          exitCode: null,
          stdout: '-A DOCKER-USER -j CROSSDOCK-FORWARD already at position 1 in filter\n',
          stderr: '',
          durationMs: expect.any(Number),
        },
        {
          ok: true,
          exitCode: null,
          stdout: '-A POSTROUTING -j CROSSDOCK-POSTROUTING already at position 1 in nat\n',
          stderr: '',
          durationMs: expect.any(Number),
        },
      ]);
      expect(await ruleset()).toBe(before);
    });

    it('replaces a chain whole, and runs no read for chains alone', async () => {
      await driver.applyFirewall([filterChain], []);
      const smaller: FirewallChain = { ...filterChain, rules: [{ destination: '10.1.0.0/24', target: 'ACCEPT' }] };
      host.processes.length = 0;
      expect((await driver.applyFirewall([smaller], [])).chains).toEqual(ok('[filter] ok\n'));
      expect(host.processes).toEqual([`${host.family}-restore --noflush --wait=10`]);
      expect((await driver.observe()).chains).toEqual([
        { table: 'filter', name: 'CROSSDOCK-FORWARD', rules: ['-A CROSSDOCK-FORWARD -d 10.1.0.0/24 -j ACCEPT'] },
      ]);
    });

    it('collapses duplicate jumps into one at the wanted position, in one transaction', async () => {
      await driver.applyFirewall([filterChain], []);
      await restoreOrThrow(host, '*filter\n-A DOCKER-USER -j CROSSDOCK-FORWARD\n-A DOCKER-USER -j CROSSDOCK-FORWARD\nCOMMIT\n');
      expect((await driver.applyFirewall([], [forwardJump])).jumps).toEqual([ok('[filter] ok\n')]);
      expect((await host.tool([`${host.family}-save`, '-t', 'filter'])).stdout.split('\n').filter((l) => l.startsWith('-A DOCKER-USER'))).toEqual([
        '-A DOCKER-USER -j CROSSDOCK-FORWARD',
        '-A DOCKER-USER -j RETURN',
      ]);
    });

    it('puts a jump last when the chain is shorter than the position asked for', async () => {
      const jump: FirewallJump = { ...forwardJump, from: 'FORWARD', position: 10 };
      expect((await driver.applyFirewall([filterChain], [jump])).jumps).toEqual([ok('[filter] ok\n')]);
      expect((await driver.observe()).jumps).toEqual([{ table: 'filter', from: 'FORWARD', to: 'CROSSDOCK-FORWARD', position: 4 }]);
      expect((await driver.applyFirewall([], [jump])).jumps[0]?.stdout).toBe('-A FORWARD -j CROSSDOCK-FORWARD already at position 4 in filter\n');
    });

    it('refuses a jump to a chain that is neither there nor created with it, running nothing for it', async () => {
      const result = await driver.applyFirewall([], [{ ...forwardJump, to: 'CROSSDOCK-OTHER' }]);
      expect(result.jumps).toEqual([
        {
          ok: false,
          exitCode: null,
          stdout: '',
          stderr: 'chain CROSSDOCK-OTHER does not exist in table filter; apply its firewall.chain first\n',
          durationMs: expect.any(Number),
        },
      ]);
      expect(host.processes).toEqual([`${host.family}-save`]);
      expect(await ruleset()).toBe(docker);
    });

    it('refuses a jump from DOCKER-USER on a host where Docker has not made it', async () => {
      await restoreOrThrow(host, '*filter\n-D FORWARD -j DOCKER-USER\n-F DOCKER-USER\n-X DOCKER-USER\nCOMMIT\n');
      expect((await driver.observe()).builtinChains.map((c) => c.name)).toEqual(['FORWARD', 'POSTROUTING']);
      const result = await driver.applyFirewall([filterChain], [forwardJump]);
      expect(result.chains).toEqual(ok('[filter] ok\n'));
      expect(result.jumps).toEqual([
        {
          ok: false,
          exitCode: null,
          stdout: '',
          stderr: 'chain DOCKER-USER does not exist in table filter (Docker creates it); jump from FORWARD instead\n',
          durationMs: expect.any(Number),
        },
      ]);
    });

    it('refuses invalid commands and runs nothing', async () => {
      const result = await driver.applyFirewall([{ ...filterChain, chain: 'DOCKER-USER' }], [forwardJump]);
      expect(result.chains).toMatchObject({ ok: false, exitCode: null });
      expect(result.chains.stderr).toContain('chain');
      expect(result.jumps).toEqual([result.chains]);
      expect(host.processes).toEqual([]);
    });

    it('is transactional per table: a table that fails changes nothing, the one before it stays committed', async () => {
      host.failNextRestoreIn('nat');
      const natFails = await driver.applyFirewall([filterChain, natChain], [forwardJump, natJump]);
      expect(natFails.chains).toMatchObject({ ok: false, stdout: '[filter] committed (the same iptables-restore failed later, in another table)\n' });
      expect(natFails.chains.stderr).toContain('[nat] ');
      expect(natFails.chains.stderr).toContain('CROSSDOCK-NOPE');
      expect(natFails.jumps.map((j) => j.ok)).toEqual([true, false]);
      const observed = await driver.observe();
      expect(observed.chains.map((c) => `${c.table}/${c.name}`)).toEqual(['filter/CROSSDOCK-FORWARD']);
      expect(observed.jumps).toEqual([ALL_IN_PLACE[0]]);

      expect((await driver.removeAll()).ok).toBe(true);
      host.failNextRestoreIn('filter');
      const filterFails = await driver.applyFirewall([filterChain, natChain], [forwardJump, natJump]);
      expect(filterFails.chains.ok).toBe(false);
      expect(filterFails.chains.stderr).toMatch(/^\[nat\] not applied: iptables-restore stopped at line \d+, in a table before this one$/m);
      expect(filterFails.jumps.map((j) => j.ok)).toEqual([false, false]);
      expect(await ruleset()).toBe(docker);
    });

    it('removeAll removes its chains and every jump to them, whatever the jump matches, and nothing else', async () => {
      await driver.applyFirewall([filterChain, natChain], [forwardJump, natJump]);
      // a jump with an extra match, as an operator might add by hand
      await restoreOrThrow(host, '*filter\n-I FORWARD 2 -i eth0 -j CROSSDOCK-FORWARD\nCOMMIT\n');
      expect(await driver.removeAll()).toEqual(ok('[filter] ok\n[nat] ok\n'));
      expect(await ruleset()).toBe(docker);
      expect(await driver.removeAll()).toEqual({
        ok: true,
        exitCode: null,
        stdout: 'no crossdock chains or jumps\n',
        stderr: '',
        durationMs: expect.any(Number),
      });
    });
  });
}
