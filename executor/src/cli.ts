// What `crossdock-executor` does with its arguments: print its version, install or uninstall
// itself (install.ts), or run the agent (the default). Returns the exit status; only main.ts exits.
import { ControllerTrust, TrustError, trustedFetch } from '@crossdock/shared/trust';
import { Agent } from './agent.ts';
import { ConfigError, USAGE, loadConfig } from './config.ts';
import { createDockerDriver, createIpDriver, createVxlanDriver, createIptablesDriver, createServiceManager, createSysctlDriver } from './drivers/index.ts';
import { EXIT_USAGE, INSTALL_USAGE, UNINSTALL_USAGE, UsageError, install, uninstall } from './install.ts';
import { createLogger, type Logger } from './log.ts';
import { httpSubnetClient, type SubnetClient } from './ipam/controller-client.ts';
import { IpamPlugin } from './ipam/plugin.ts';
import { servePlugin, type PluginServer } from './ipam/server.ts';
import { FileIpamStore } from './ipam/state.ts';
import { EXECUTOR_VERSION } from './version.ts';

const SUBCOMMANDS = `  crossdock-executor install --controller URL --token TOKEN   install as a systemd service (see install --help)
  crossdock-executor uninstall [--purge]                      remove the service (see uninstall --help)
  crossdock-executor --version`;

function fail(message: string): number {
  console.error(`crossdock-executor: ${message}`);
  return EXIT_USAGE;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--version' || first === 'version') {
    console.log(EXECUTOR_VERSION);
    return 0;
  }
  if (first === 'install' || first === 'uninstall') {
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(first === 'install' ? INSTALL_USAGE : UNINSTALL_USAGE);
      return 0;
    }
    const context = {
      print: (line: string) => console.log(line),
      services: createServiceManager(),
      drivers: (dockerHost: string) => ({
        ip: createIpDriver(),
        vxlan: createVxlanDriver(),
        iptables: createIptablesDriver(),
        docker: createDockerDriver({ dockerHost }),
        sysctl: createSysctlDriver(),
      }),
    };
    try {
      return first === 'install' ? await install(rest, env, context) : await uninstall(rest, env, context);
    } catch (error) {
      if (error instanceof UsageError) return fail(error.message);
      throw error;
    }
  }
  return runAgent(first === 'run' ? rest : argv, env);
}

async function runAgent(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let config;
  try {
    config = loadConfig(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return fail(error.message);
    throw error;
  }
  if (config === 'help') {
    console.log(`${USAGE}\n${SUBCOMMANDS}`);
    return 0;
  }

  let trust: ControllerTrust;
  try {
    trust = new ControllerTrust({ caFingerprint: config.caFingerprint, caFile: config.caFile });
  } catch (error) {
    if (error instanceof TrustError) return fail(error.message);
    throw error;
  }
  const log = createLogger();
  const agent = new Agent({
    trust,
    controllers: config.controllerUrls,
    token: config.token,
    transport: config.transport,
    reconcileIntervalMs: config.reconcileIntervalMs,
    drivers: {
      ip: createIpDriver(),
      vxlan: createVxlanDriver(),
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
  log.info(
    {
      controllers: config.controllerUrls,
      trust: config.caFingerprint ?? config.caFile ?? 'system CAs',
      transport: config.transport,
      dockerHost: config.dockerHost,
      version: EXECUTOR_VERSION,
    },
    'crossdock executor starting',
  );
  // The plugin asks the first controller of the list; a standby answers NOT_LEADER naming the leader (README).
  const ipam = config.ipamSocket
    ? await startIpamPlugin(
        config.ipamSocket,
        config.ipamStateFile,
        httpSubnetClient(config.controllerUrls[0]!, config.token, undefined, trustedFetch(trust)),
        log,
      )
    : null;
  const exit = await agent.run();
  await ipam?.close();
  if (exit.reason === 'revoked') log.warn({ reason: exit.message }, 'exiting: this host was deleted from the controller');
  return 0;
}

/**
 * The Docker IPAM plugin beside the agent. One that cannot start is logged and left out: routing
 * the fleet's subnets matters more than new Docker networks on this host.
 */
async function startIpamPlugin(socket: string, stateFile: string, controller: SubnetClient, log: Logger): Promise<PluginServer | null> {
  const plugin = new IpamPlugin({ store: new FileIpamStore(stateFile), controller, log });
  try {
    await plugin.start();
    const server = await servePlugin(plugin, socket, log);
    return {
      socket,
      close: async () => {
        await server.close();
        await plugin.stop();
      },
    };
  } catch (error) {
    await plugin.stop();
    log.error({ socket, stateFile, error: (error as Error).message }, 'not serving the Docker IPAM plugin');
    return null;
  }
}
