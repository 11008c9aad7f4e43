// A simulated host in its own process: the real executor (agent, protocol, job runner) over
// the in-memory fake drivers, so nothing on this machine changes. Killing the process drops
// its connection the way a host that dies does.
//   node --import tsx test/support/sim-executor-process.ts <controller url[,url...]> <host token> [<CA fingerprint>]
// It prints `attached <url>` each time a session with a controller opens.
import { ControllerTrust } from '@crossdock/shared/trust';
import { Agent } from '../../executor/src/agent.ts';
import { FakeDockerDriver, FakeIpDriver, FakeVxlanDriver, FakeIptablesDriver, FakeSysctlDriver } from '../../executor/src/drivers/fake.ts';
import type { Logger } from '../../executor/src/log.ts';

const [controllerList, token, caFingerprint] = process.argv.slice(2);
if (!controllerList || !token) {
  console.error('usage: sim-executor-process.ts <controller url[,url...]> <host token> [<CA fingerprint>]');
  process.exit(2);
}
const agent = new Agent({
  controllers: controllerList.split(','),
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
  log: { info: (...args: unknown[]) => announce(args), warn: () => {}, error: () => {} } as unknown as Logger,
});

/** The agent logs 'connected to the controller' when a session opens: say which, for the parent. */
function announce(args: unknown[]): void {
  if (args.includes('connected to the controller')) console.log(`attached ${agent.controllerUrl}`);
}
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
