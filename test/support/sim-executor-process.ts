// A simulated host in its own process: the real executor (agent, protocol, job runner) over
// the in-memory fake drivers, so nothing on this machine changes. Killing the process drops
// its connection the way a host that dies does.
//   node --import tsx test/support/sim-executor-process.ts <controller url> <host token> [<CA fingerprint>]
import { ControllerTrust } from '@crossdock/shared/trust';
import { Agent } from '../../executor/src/agent.ts';
import { FakeDockerDriver, FakeIpDriver, FakeVxlanDriver, FakeIptablesDriver, FakeSysctlDriver } from '../../executor/src/drivers/fake.ts';
import { silentLogger } from '../../executor/src/log.ts';

const [controllerUrl, token, caFingerprint] = process.argv.slice(2);
if (!controllerUrl || !token) {
  console.error('usage: sim-executor-process.ts <controller url> <host token>');
  process.exit(2);
}
const agent = new Agent({
  controllerUrl,
  token,
  // pinned as a join line pins it; without one, the test run's CA through NODE_EXTRA_CA_CERTS
  trust: new ControllerTrust({ caFingerprint }),
  drivers: {
    ip: new FakeIpDriver(),
    vxlan: new FakeVxlanDriver(),
    iptables: new FakeIptablesDriver({ forwardPolicy: 'DROP' }),
    docker: new FakeDockerDriver(),
    sysctl: new FakeSysctlDriver(),
  },
  job: { daemonJsonPath: '/nonexistent/daemon.json', engineRestartCommand: ['true'] },
  transport: 'websocket',
  log: silentLogger,
});
process.once('SIGTERM', () => agent.stop());
// A test run that dies (killed, interrupted) must not leave this process reconnecting forever:
// once its parent is gone it is re-parented, and it exits.
const PARENT_CHECK_INTERVAL_MS = 1_000;
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, PARENT_CHECK_INTERVAL_MS).unref();
const exit = await agent.run();
console.log(`executor exited: ${exit.reason}`);
