// One observation of the host, through the drivers, in the protocol's shape.
import type { ObservedState } from '@crossdock/shared';
import type { DockerDriver, IpDriver, IptablesDriver, SysctlDriver, VxlanDriver } from './drivers/index.ts';

export interface Drivers {
  ip: IpDriver;
  iptables: IptablesDriver;
  docker: DockerDriver;
  sysctl: SysctlDriver;
  /** absent: this executor does not manage VXLAN (its jobs' VXLAN commands fail, saying so) */
  vxlan?: VxlanDriver;
}

export async function observeHost(drivers: Drivers): Promise<ObservedState> {
  const [routes, interfaces, firewall, docker, sysctl, vxlan] = await Promise.all([
    drivers.ip.observeRoutes(),
    drivers.ip.observeInterfaces(),
    drivers.iptables.observe(),
    drivers.docker.observe().catch((error: Error) => ({ available: false, version: null, networks: [], bip: null, error: error.message })),
    drivers.sysctl.observe(),
    drivers.vxlan?.observe(),
  ]);
  return {
    // A route of our protocol without a gateway is not one we made: report it as such
    // (empty via) so the planner replaces or removes it.
    routes: routes.map((r) => ({ dst: r.dst, via: r.via ?? '', dev: r.dev })),
    firewall: {
      backend: firewall.backend,
      chains: firewall.chains.map((c) => ({ table: c.table, name: c.name, rules: c.rules })),
      jumps: firewall.jumps.map((j) => ({ table: j.table, from: j.from, to: j.to, position: j.position })),
      builtinChains: firewall.builtinChains.map((c) => `${c.table}/${c.name}`),
      forwardPolicy: firewall.forwardPolicy,
      ...(firewall.inputPolicy === undefined ? {} : { inputPolicy: firewall.inputPolicy }),
    },
    docker: {
      available: docker.available,
      version: docker.version,
      networks: docker.networks.map((n) => ({ id: n.id, name: n.name, subnet: n.subnet, gateway: n.gateway, labels: n.labels, containers: n.containers })),
      bip: docker.bip,
      ...('error' in docker && docker.error ? { error: String(docker.error) } : {}),
    },
    interfaces,
    sysctl: Object.fromEntries(Object.entries(sysctl).filter((e): e is [string, string] => e[1] !== null)),
    ...(vxlan ? { vxlan } : {}),
  };
}
