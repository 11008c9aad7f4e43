// The per-change planner against the full planner, on random fleets and random changes: a host
// that had applied its old desired state and then runs its part of a change has exactly its new
// desired state, and its route digest sum moves by exactly the routes the change says.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addHash, itemHash, parseIPv4, renderRule, subtractHash, type Command } from '@crossdock/shared';
import { planChange, type FleetChange } from './change.ts';
import {
  desiredState,
  firewallPolicy,
  routeDigestSum,
  routeItem,
  type DesiredState,
  type FirewallPolicy,
  type HostEnvironment,
  type PlanHost,
  type PlanPool,
  type PlanSubnet,
} from './desired.ts';

/** A host's state as far as crossdock's commands shape it. */
interface HostState {
  routes: Record<string, string>;
  chains: Record<string, string[]>;
  networks: Record<string, string>;
  bip: string | null;
}

function stateOf(desired: DesiredState): HostState {
  return {
    routes: Object.fromEntries(desired.routes.map((r) => [r.dst, `${r.via} ${r.dev}`])),
    chains: Object.fromEntries(desired.chains.map((c) => [`${c.table}/${c.chain}`, c.rules.map((r) => renderRule(c.chain, r))])),
    networks: Object.fromEntries(desired.networks.map((n) => [n.name, `${n.subnet} ${n.gateway}`])),
    bip: desired.bip?.bip ?? null,
  };
}

/** What the executor would leave after running `commands` on a host in `state`. */
function run(state: HostState, commands: Command[]): HostState {
  const next = structuredClone(state);
  for (const c of commands) {
    switch (c.kind) {
      case 'route.replace':
        next.routes[c.dst] = `${c.via} ${c.dev}`;
        break;
      case 'route.delete':
        delete next.routes[c.dst];
        break;
      case 'firewall.chain':
        next.chains[`${c.table}/${c.chain}`] = c.rules.map((r) => renderRule(c.chain, r));
        break;
      case 'docker.network.create':
        next.networks[c.name] = `${c.subnet} ${c.gateway}`;
        break;
      case 'docker.network.remove':
        delete next.networks[c.name];
        break;
      case 'docker.daemon.bip':
        next.bip = c.bip;
        break;
      case 'firewall.jump':
      case 'sysctl.set':
        break; // the same in every desired state
    }
  }
  return next;
}

function policyOf(hosts: PlanHost[], pools: PlanPool[]): FirewallPolicy {
  return firewallPolicy(
    pools,
    hosts.map((h) => parseIPv4(h.address)!),
  );
}

const sameRules = (a: FirewallPolicy, b: FirewallPolicy) => JSON.stringify(a) === JSON.stringify(b);

// ---- random fleets ----

interface World {
  hosts: PlanHost[];
  pools: PlanPool[];
  envs: HostEnvironment[];
}

const arbEnv = fc.record({ dockerAvailable: fc.boolean(), dockerUser: fc.boolean(), engineMajor: fc.constantFrom(20, 28, null) });

/** Hosts 1..n on 198.51.100.(10+i), each with up to two /24s of 10.100.0.0/16, all distinct. */
const arbWorld: fc.Arbitrary<World> = fc
  .record({
    counts: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 5 }),
    modes: fc.array(fc.constantFrom<PlanSubnet['mode']>('network', 'network', 'bip', 'docker'), { minLength: 10, maxLength: 10 }),
    envs: fc.array(arbEnv, { minLength: 7, maxLength: 7 }),
    allowFrom: fc.constantFrom<string[]>([], ['192.0.2.0/24']),
  })
  .map(({ counts, modes, envs, allowFrom }) => {
    let third = 0;
    const hosts = counts.map(
      (count, i): PlanHost => ({
        id: i + 1,
        name: `h${i + 1}`,
        address: `198.51.100.${11 + i}`,
        interface: 'eth0',
        subnets: Array.from({ length: count }, (_, j): PlanSubnet => {
          third++;
          // one bip subnet at most per host: the first
          const mode = j === 0 ? modes[third % modes.length]! : 'network';
          const network = mode === 'docker' ? `docker/10.100.${third}.0/24` : j === 0 ? 'crossdock' : 'crossdock-2';
          return { id: third, cidr: `10.100.${third}.0/24`, gateway: `10.100.${third}.1`, network, mode };
        }),
      }),
    );
    return { hosts, pools: [{ cidr: '10.100.0.0/16', allowFrom }], envs };
  });

type Step = (world: World) => { change: FleetChange; after: World } | null;

const replaceHost = (world: World, host: PlanHost): World => ({ ...world, hosts: world.hosts.map((h) => (h.id === host.id ? host : h)) });

const steps: Record<string, Step> = {
  hostAdded: (w) => {
    const id = w.hosts.length + 1;
    const host: PlanHost = {
      id,
      name: `h${id}`,
      address: `198.51.100.${11 + id}`,
      interface: 'eth0',
      subnets: [{ id: 100, cidr: '10.100.100.0/24', gateway: '10.100.100.1', network: 'crossdock', mode: 'network' }],
    };
    return { change: { type: 'host.added', host }, after: { ...w, hosts: [...w.hosts, host] } };
  },
  hostRemoved: (w) => {
    const host = w.hosts.at(-1)!;
    return { change: { type: 'host.removed', host }, after: { ...w, hosts: w.hosts.filter((h) => h.id !== host.id) } };
  },
  subnetAdded: (w) => {
    const before = w.hosts[0]!;
    const subnet: PlanSubnet = { id: 101, cidr: '10.100.101.0/24', gateway: '10.100.101.1', network: 'crossdock-3', mode: 'network' };
    const after = { ...before, subnets: [...before.subnets, subnet] };
    return { change: { type: 'subnet.added', after, subnet }, after: replaceHost(w, after) };
  },
  // A network Docker owns (--ipam-driver crossdock): routed and in the chains, never a Docker command.
  dockerSubnetAdded: (w) => {
    const before = w.hosts[0]!;
    const subnet: PlanSubnet = { id: 102, cidr: '10.100.102.0/24', gateway: '10.100.102.1', network: 'docker/10.100.102.0/24', mode: 'docker' };
    const after = { ...before, subnets: [...before.subnets, subnet] };
    return { change: { type: 'subnet.added', after, subnet }, after: replaceHost(w, after) };
  },
  subnetRemoved: (w) => {
    const before = w.hosts.find((h) => h.subnets.length > 0);
    if (!before) return null;
    const subnet = before.subnets.at(-1)!;
    const after = { ...before, subnets: before.subnets.filter((s) => s.id !== subnet.id) };
    return { change: { type: 'subnet.removed', before, after, subnet }, after: replaceHost(w, after) };
  },
  hostReaddressed: (w) => {
    const before = w.hosts[0]!;
    const after = { ...before, address: '198.51.100.99' };
    return { change: { type: 'host.moved', before, after }, after: replaceHost(w, after) };
  },
  poolsChanged: (w) => {
    const pools: PlanPool[] = [
      { cidr: '10.100.0.0/16', allowFrom: w.pools[0]!.allowFrom.length ? [] : ['192.0.2.0/24'] },
      { cidr: '10.200.0.0/16', allowFrom: [] },
    ];
    return { change: { type: 'pools.changed' }, after: { ...w, pools } };
  },
};

describe('planChange: a change applied to a host in sync gives its new desired state', () => {
  it.each(Object.keys(steps))('%s, on random fleets', (name) => {
    fc.assert(
      fc.property(arbWorld, (world) => {
        const step = steps[name]!(world);
        if (!step) return;
        const { change, after } = step;
        const envOf = (id: number) => world.envs[(id - 1) % world.envs.length]!;
        const policyBefore = policyOf(world.hosts, world.pools);
        const computed = policyOf(after.hosts, after.pools);
        // the cluster keeps the same policy object when a change leaves its rules alone
        const policy = sameRules(computed, policyBefore) ? policyBefore : computed;
        const deltas = planChange(change, { hosts: new Map(after.hosts.map((h) => [h.id, h])), policy, policyBefore, envOf, sendsTo: () => true });
        const byHost = new Map(deltas.map((d) => [d.hostId, d]));

        for (const hostAfter of after.hosts) {
          const hostBefore = world.hosts.find((h) => h.id === hostAfter.id);
          if (!hostBefore) continue; // a new host is planned in full from its first report
          const delta = byHost.get(hostAfter.id);
          if (delta?.replan) continue;
          const env = envOf(hostAfter.id);
          const start = stateOf(desiredState(hostBefore, world.hosts, policyBefore, env));
          const wanted = stateOf(desiredState(hostAfter, after.hosts, policy, env));
          // nothing removes a bip once set (the engine keeps its bridge): compare it only when wanted
          const reached = run(start, delta?.commands ?? []);
          if (wanted.bip === null) reached.bip = null;
          expect(reached, `host ${hostAfter.name}`).toEqual(wanted);

          let sum = routeDigestSum(hostBefore, world.hosts);
          for (const r of delta?.addedRoutes ?? []) sum = addHash(sum, itemHash(routeItem(r)));
          for (const r of delta?.removedRoutes ?? []) sum = subtractHash(sum, itemHash(routeItem(r)));
          expect(sum, `route digest sum of ${hostAfter.name}`).toBe(routeDigestSum(hostAfter, after.hosts));
        }
      }),
      { numRuns: 150 },
    );
  });

  it('hosts nothing is sent to get no commands, but still their part (their generation moves)', () => {
    const a: PlanHost = { id: 1, name: 'a', address: '198.51.100.11', interface: 'eth0', subnets: [] };
    const b: PlanHost = { id: 2, name: 'b', address: '198.51.100.12', interface: 'eth0', subnets: [] };
    const subnet: PlanSubnet = { id: 1, cidr: '10.100.1.0/24', gateway: '10.100.1.1', network: 'crossdock', mode: 'network' };
    const after = { ...a, subnets: [subnet] };
    const policy = policyOf([a, b], [{ cidr: '10.100.0.0/16', allowFrom: [] }]);
    const env = () => ({ dockerAvailable: true, dockerUser: true, engineMajor: 20 });
    const deltas = planChange(
      { type: 'subnet.added', after, subnet },
      {
        hosts: new Map([
          [1, after],
          [2, b],
        ]),
        policy,
        policyBefore: policy,
        envOf: env,
        sendsTo: (id) => id === 2,
      },
    );
    expect(deltas.map((d) => [d.hostId, d.commands.map((c) => c.kind)])).toEqual([
      [1, []],
      [2, ['route.replace']],
    ]);
  });

  it('an interface change asks for a full replan of that host only', () => {
    const a: PlanHost = { id: 1, name: 'a', address: '198.51.100.11', interface: 'eth0', subnets: [] };
    const b: PlanHost = { id: 2, name: 'b', address: '198.51.100.12', interface: 'eth0', subnets: [] };
    const moved = { ...a, interface: 'ens3' };
    const policy = policyOf([a, b], [{ cidr: '10.100.0.0/16', allowFrom: [] }]);
    const deltas = planChange(
      { type: 'host.moved', before: a, after: moved },
      {
        hosts: new Map([
          [1, moved],
          [2, b],
        ]),
        policy,
        policyBefore: policy,
        envOf: () => ({ dockerAvailable: true, dockerUser: true, engineMajor: 20 }),
        sendsTo: () => true,
      },
    );
    expect(deltas).toEqual([{ hostId: 1, commands: [], addedRoutes: [], removedRoutes: [], replan: true }]);
  });
});
