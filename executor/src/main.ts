// Entry point of the executor: reads its configuration, builds the real drivers, runs the agent.
import { Agent, consoleLogger } from './agent.ts';
import { ConfigError, USAGE, loadConfig } from './config.ts';
import { createDockerDriver, createIpDriver, createIptablesDriver, createSysctlDriver } from './drivers/index.ts';

function fail(message: string): never {
  console.error(`crossdock-executor: ${message}`);
  process.exit(2);
}

let config;
try {
  config = loadConfig(process.argv.slice(2), process.env);
} catch (error) {
  if (error instanceof ConfigError) fail(error.message);
  throw error;
}
if (config === 'help') {
  console.log(USAGE);
  process.exit(0);
}

const agent = new Agent({
  controllerUrl: config.controllerUrl,
  token: config.token,
  transport: config.transport,
  reconcileIntervalMs: config.reconcileIntervalMs,
  drivers: {
    ip: createIpDriver(),
    iptables: createIptablesDriver(),
    docker: createDockerDriver({ dockerHost: config.dockerHost }),
    sysctl: createSysctlDriver(),
  },
  job: { daemonJsonPath: config.daemonJsonPath, engineRestartCommand: config.engineRestartCommand },
  log: consoleLogger,
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    consoleLogger.info('stopping; the host keeps what was applied', { signal });
    agent.stop();
  });
}
consoleLogger.info('crossdock executor starting', { controller: config.controllerUrl, transport: config.transport, dockerHost: config.dockerHost });
const exit = await agent.run();
if (exit.reason === 'revoked') consoleLogger.warn('exiting: this host was deleted from the controller', { reason: exit.message });
process.exit(0);
