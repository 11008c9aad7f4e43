// Entry point of the executor: reads its configuration, builds the real drivers, runs the agent.
import { Agent } from './agent.ts';
import { ConfigError, USAGE, loadConfig } from './config.ts';
import { createDockerDriver, createIpDriver, createIptablesDriver, createSysctlDriver } from './drivers/index.ts';
import { createLogger } from './log.ts';

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

const log = createLogger();
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
  log,
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    log.info({ signal }, 'stopping; the host keeps what was applied');
    agent.stop();
  });
}
log.info({ controller: config.controllerUrl, transport: config.transport, dockerHost: config.dockerHost }, 'crossdock executor starting');
const exit = await agent.run();
if (exit.reason === 'revoked') log.warn({ reason: exit.message }, 'exiting: this host was deleted from the controller');
process.exit(0);
