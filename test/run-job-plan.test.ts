// The planner and the executor agree: what the controller plans for a host, the executor
// (with the in-memory drivers) applies in one job, after which there is nothing left to plan
// and the executor's digest is the one the controller expects.
import { beforeEach, describe, expect, it } from 'vitest';
import { observedDigest, parseIPv4 } from '@crossdock/shared';
import { desiredDigest, desiredState, environmentOf, firewallPolicy, routeDigestSum, type PlanHost } from '../controller/src/planner/desired.ts';
import { plan } from '../controller/src/planner/plan.ts';
import { FakeDockerDriver, FakeIpDriver, FakeIptablesDriver, FakeSysctlDriver } from '../executor/src/drivers/fake.ts';
import { observeHost, type Drivers } from '../executor/src/observe.ts';
import { runJob, type JobOptions } from '../executor/src/run-job.ts';

const RESTART: JobOptions = { daemonJsonPath: '/etc/docker/daemon.json', engineRestartCommand: ['systemctl', 'restart', 'docker'] };

let ip: FakeIpDriver;
let iptables: FakeIptablesDriver;
let docker: FakeDockerDriver;
let sysctl: FakeSysctlDriver;
let drivers: Drivers;

beforeEach(() => {
  ip = new FakeIpDriver();
  iptables = new FakeIptablesDriver();
  docker = new FakeDockerDriver();
  sysctl = new FakeSysctlDriver();
  drivers = { ip, iptables, docker, sysctl };
});

describe('the planner and the executor agree', () => {
  const POOLS = [{ cidr: '10.100.0.0/16', allowFrom: ['192.0.2.0/24'] }];
  const policyOf = (hosts: PlanHost[]) =>
    firewallPolicy(
      POOLS,
      hosts.map((h) => parseIPv4(h.address)!),
    );
  const A: PlanHost = {
    id: 1,
    name: 'node-a',
    address: '198.51.100.11',
    interface: 'eth0',
    subnets: [{ id: 1, cidr: '10.100.1.0/24', gateway: '10.100.1.1', network: 'crossdock', mode: 'network' }],
  };
  const B: PlanHost = {
    id: 2,
    name: 'node-b',
    address: '198.51.100.12',
    interface: 'eth0',
    subnets: [{ id: 2, cidr: '10.100.2.0/24', gateway: '10.100.2.1', network: 'crossdock', mode: 'network' }],
  };
  const C: PlanHost = {
    id: 3,
    name: 'node-c',
    address: '198.51.100.13',
    interface: 'eth0',
    subnets: [{ id: 3, cidr: '10.100.3.0/24', gateway: '10.100.3.1', network: 'crossdock', mode: 'network' }],
  };

  async function converge(hosts: PlanHost[], self = A) {
    const before = await observeHost(drivers);
    const env = environmentOf(before);
    const policy = policyOf(hosts);
    const commands = plan(desiredState(self, hosts, policy, env), before);
    const outcome = await runJob(commands, drivers, RESTART);
    const after = await observeHost(drivers);
    const expected = desiredDigest(self, policy, environmentOf(after), routeDigestSum(self, hosts));
    return { commands, outcome, after, replan: plan(desiredState(self, hosts, policy, environmentOf(after)), after), expected };
  }

  it.each([
    ['engine 20 with DOCKER-USER', () => {}],
    ['engine 28', () => void (docker.version = '28.0.4')],
    [
      'no DOCKER-USER (Docker not installed)',
      () => {
        iptables = new FakeIptablesDriver({ dockerUser: false });
        docker.available = false;
        drivers = { ip, iptables, docker, sysctl };
      },
    ],
  ])('%s: after one job there is nothing left to do, and the digests match', async (_name, setup) => {
    setup();
    const first = await converge([A, B, C]);
    expect(first.commands.length).toBeGreaterThan(0);
    expect(first.outcome).toMatchObject({ accepted: true });
    expect(first.outcome.results.filter((r) => !r.ok)).toStrictEqual([]);
    expect(first.replan).toStrictEqual([]);
    expect(observedDigest(first.after)).toBe(first.expected);

    // a peer leaves, another is re-addressed, the host gets a second subnet: one more job converges
    const A2: PlanHost = { ...A, subnets: [...A.subnets, { id: 4, cidr: '10.100.4.0/24', gateway: '10.100.4.1', network: 'crossdock-2', mode: 'network' }] };
    const second = await converge([A2, { ...B, address: '198.51.100.22' }], A2);
    // a network created puts the nat jump back above Docker's MASQUERADE (a no-op when Docker did not move it)
    expect(second.commands.map((c) => c.kind).sort()).toStrictEqual(
      (docker.available ? ['docker.network.create', 'firewall.jump'] : []).concat(['firewall.chain', 'firewall.chain', 'route.delete', 'route.replace']).sort(),
    );
    expect(second.replan).toStrictEqual([]);
    expect(observedDigest(second.after)).toBe(second.expected);
  });

  it('repairs drift made by hand in one job', async () => {
    await converge([A, B, C]);
    ip.routes.delete('10.100.2.0/24');
    iptables.tables.get('filter')!.rules.set('DOCKER-USER', ['-A DOCKER-USER -j RETURN', '-A DOCKER-USER -j CROSSDOCK-FORWARD']);
    iptables.tables.get('nat')!.rules.set('CROSSDOCK-POSTROUTING', []);
    sysctl.values['net.ipv4.ip_forward'] = '0';
    const repaired = await converge([A, B, C]);
    expect(repaired.commands.map((c) => c.kind)).toStrictEqual(['sysctl.set', 'firewall.chain', 'firewall.jump', 'route.replace']);
    expect(repaired.replan).toStrictEqual([]);
    expect(observedDigest(repaired.after)).toBe(repaired.expected);
  });
});
