// What a revoked host does: remove everything crossdock created, and nothing else. Networks
// that still have containers are left in place, with a message saying so.
import { MANAGED_LABEL, VXLAN_DEVICE, VXLAN_DEVICE_ALIAS } from '@crossdock/shared';
import type { Drivers } from './observe.ts';

export interface RemovalReport {
  routes: number;
  networks: number;
  refused: string[];
}

export async function removeEverything(drivers: Drivers): Promise<RemovalReport> {
  const refused: string[] = [];
  const routes = await drivers.ip.observeRoutes();
  if (routes.length > 0) {
    const result = await drivers.ip.applyRoutes(routes.map((r) => ({ kind: 'route.delete' as const, dst: r.dst })));
    if (!result.ok) refused.push(`some routes were not removed: ${result.stderr.trim()}`);
  }
  // The VXLAN device takes its neighbour and fdb entries with it; a device of that name crossdock did not make stays.
  if (drivers.vxlan) {
    const vxlan = await drivers.vxlan.observe().catch(() => undefined);
    if (vxlan?.device && vxlan.device.alias === VXLAN_DEVICE_ALIAS) {
      const [removed] = await drivers.vxlan.apply([{ kind: 'vxlan.device.delete', name: VXLAN_DEVICE }]);
      if (removed && !removed.ok) refused.push(`the VXLAN device ${VXLAN_DEVICE} was not removed: ${removed.stderr.trim()}`);
    }
  }
  const firewall = await drivers.iptables.removeAll();
  if (!firewall.ok) refused.push(`firewall chains were not fully removed: ${firewall.stderr.trim()}`);
  let networks = 0;
  const docker = await drivers.docker.observe().catch(() => undefined);
  for (const network of docker?.networks ?? []) {
    if (network.labels[MANAGED_LABEL] !== 'true') continue;
    const result = await drivers.docker.removeNetwork({ kind: 'docker.network.remove', name: network.name });
    if (result.ok) networks++;
    else refused.push(`network ${network.name} was kept: ${result.stderr.trim()}`);
  }
  return { routes: routes.length, networks, refused };
}
