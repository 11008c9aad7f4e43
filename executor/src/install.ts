// `crossdock-executor install` and `uninstall`: put this one-file executor on a host as a systemd
// service, and take it off again. Every file is written whole (a temporary file renamed over the
// old one), so installing again updates in place and an interrupted install leaves no half file.
// The host token goes only into its 0600 file: the unit and the service's argv name the file.
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { chmod, mkdir, readdir, rename, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MANAGED_LABEL, shellLine } from '@crossdock/shared';
import { ControllerTrust, TrustError } from '@crossdock/shared/trust';
import { ConfigError, loadConfig } from './config.ts';
import type { ServiceManager } from './drivers/systemd.ts';
import type { Drivers } from './observe.ts';
import { removeEverything } from './revoke.ts';
import { EXECUTOR_VERSION, buildKind, type BuildKind } from './version.ts';

export const UNIT_NAME = 'crossdock-executor.service';

/** Where install puts things, on the target's filesystem (under --root when given). */
export const INSTALL_PATHS = {
  /** the program itself; its name keeps `.mjs` so that every Node 20 loads it as an ES module */
  programDir: '/usr/local/lib/crossdock',
  /** the command: a symbolic link to the program */
  command: '/usr/local/bin/crossdock-executor',
  tokenDir: '/etc/crossdock',
  token: '/etc/crossdock/token',
  /** the controller's CA, when install was given --ca-file */
  ca: '/etc/crossdock/ca.pem',
  unit: `/etc/systemd/system/${UNIT_NAME}`,
} as const;

/** The program's file name: the single executable has no extension, the one-file build `.mjs`. */
export function programName(kind: 'onefile' | 'sea'): string {
  return kind === 'sea' ? 'crossdock-executor' : 'crossdock-executor.mjs';
}

const PROGRAM_NAMES = [programName('onefile'), programName('sea')];

/** Run settings install may put in the unit, as the environment variables config.ts reads. */
const UNIT_SETTINGS = [
  ['docker-host', 'DOCKER_HOST'],
  ['transport', 'CROSSDOCK_TRANSPORT'],
  ['reconcile-interval-ms', 'CROSSDOCK_RECONCILE_INTERVAL_MS'],
  ['daemon-json', 'CROSSDOCK_DAEMON_JSON'],
  ['engine-restart-command', 'CROSSDOCK_ENGINE_RESTART_COMMAND'],
  ['ipam-socket', 'CROSSDOCK_IPAM_SOCKET'],
  ['ipam-state', 'CROSSDOCK_IPAM_STATE'],
] as const;

export const INSTALL_USAGE = `usage: crossdock-executor install --controller URL (--token TOKEN | --token-file PATH|-) [options]
  Copies this program to ${INSTALL_PATHS.programDir}/ (the command ${INSTALL_PATHS.command} links to it),
  writes the token to ${INSTALL_PATHS.token} (mode 0600) and the unit ${INSTALL_PATHS.unit},
  then, where systemd runs, enables and (re)starts the service. Running it again updates in place.
  --controller URL[,URL]    the controller's URL, or a leader's and its standbys' (CROSSDOCK_CONTROLLER)
  --token TOKEN             this host's token (CROSSDOCK_TOKEN)
  --token-file PATH|-       read the token from a file, or from standard input with "-" (CROSSDOCK_TOKEN_FILE)
  --ca-fingerprint sha256:HEX   trust only a controller whose certificate chains to this CA (the join line's);
                            checked against the controller before anything is written
  --ca-file PATH            trust only the CA(s) in this PEM file; copied to ${INSTALL_PATHS.ca}
  --root DIR                write under DIR instead of / (packaging, tests); systemd is left alone
  --dry-run                 print what would be written and run; change nothing
  --docker-host URL, --transport MODE, --reconcile-interval-ms N, --daemon-json PATH,
  --allow-engine-restart, --engine-restart-command JSON, --ipam-socket PATH|off, --ipam-state PATH
                            settings for the service, as \`crossdock-executor --help\` describes them`;

export const UNINSTALL_USAGE = `usage: crossdock-executor uninstall [--purge [--docker-host URL]] [--root DIR] [--dry-run]
  Stops and disables the service (where systemd runs), removes the unit, the program, the command
  and the token file.
  --purge                   also remove what crossdock created on this host: its routes, its firewall
                            chains and its Docker networks (a network that still has containers is kept,
                            and named); the same cleanup as a host deleted from the controller
  --docker-host URL         the Docker endpoint for --purge (DOCKER_HOST, default unix:///var/run/docker.sock)
  --root DIR                remove under DIR instead of / (systemd is left alone)
  --dry-run                 print what would be removed; change nothing`;

export interface InstallContext {
  print: (line: string) => void;
  services: ServiceManager;
  /** how this program was built (version.ts) and where its file is */
  build?: { kind: BuildKind; file: string };
  /** the node binary a one-file build runs on (default: the one running now) */
  nodePath?: string;
  /** read by --token-file - */
  stdin?: () => string;
  /** where this machine's / is (tests point it at a directory; --root still means packaging) */
  systemRoot?: string;
}

export interface UninstallContext extends InstallContext {
  /** the host's drivers, for --purge */
  drivers: (dockerHost: string) => Drivers;
}

/** Exit statuses: 2 for a wrong invocation (nothing changed), 1 for work that did not fully succeed. */
export const EXIT_USAGE = 2;
export const EXIT_INCOMPLETE = 1;

export class UsageError extends Error {}

type Artifact =
  | { kind: 'file'; path: string; content: Buffer; mode: number; describe: string; secret?: true }
  | { kind: 'symlink'; path: string; target: string; describe: string };

/** The running program's own file: what install copies. */
export function ownBuild(): { kind: BuildKind; file: string } {
  const kind = buildKind();
  return { kind, file: kind === 'sea' ? process.execPath : fileURLToPath(import.meta.url) };
}

function parse(argv: string[], options: NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; see --help`);
  }
}

/** Where files go, and whether that is this machine's live system (where systemd may be told). */
function resolveRoot(root: string | undefined, context: InstallContext): { root: string; live: boolean } {
  if (root === '') throw new UsageError('--root is empty; give a directory, such as ./pkgroot');
  const resolved = root === undefined ? '/' : path.resolve(root);
  if (resolved !== '/') return { root: resolved, live: false };
  return { root: context.systemRoot ?? '/', live: true };
}

const under = (root: string, file: string) => (root === '/' ? file : path.join(root, file));

/** A systemd Environment= assignment, quoted so that no value can break out of it (systemd.syntax). */
export function unitEnvironment(name: string, value: string): string {
  if (/[\p{Cc}]/u.test(value)) throw new UsageError(`the value for ${name} holds a control character (a newline, a tab); give it on one line`);
  const escaped = `${name}=${value}`.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('%', '%%');
  return `Environment="${escaped}"`;
}

/** ExecStart=: argv words, each quoted where it needs it; `%` doubled (systemd specifiers). */
function execStart(argv: string[]): string {
  return argv
    .map((word) => (/^[A-Za-z0-9@+=:,./_-]+$/.test(word) ? word : `"${word.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).replaceAll('%', '%%'))
    .join(' ');
}

/**
 * Node's options for the service. A young generation of at most 1 MiB a half (Node's default
 * grows to 16): the executor is idle nearly all its life, and a burst of repairs grew the
 * default one to 30 MiB more resident memory that it kept (109 MiB after 100 repairs, 83 with
 * this). The cost is a few more, smaller collections during a burst.
 */
export const EXECUTOR_NODE_OPTIONS = '--max-semi-space-size=1';

export interface UnitInput {
  kind: 'onefile' | 'sea';
  nodePath: string;
  environment: [string, string][];
}

export function renderUnit(input: UnitInput): string {
  const program = path.posix.join(INSTALL_PATHS.programDir, programName(input.kind));
  const argv = input.kind === 'sea' ? [program] : [input.nodePath, program];
  return [
    `# Written by \`crossdock-executor install\` (executor ${EXECUTOR_VERSION}); \`crossdock-executor uninstall\` removes it.`,
    `# The host token is in ${INSTALL_PATHS.token} (mode 0600), never in this file or the command line.`,
    '[Unit]',
    'Description=crossdock executor',
    'Wants=network-online.target',
    'After=network-online.target docker.service',
    '',
    '[Service]',
    unitEnvironment('NODE_OPTIONS', EXECUTOR_NODE_OPTIONS),
    ...input.environment.map(([name, value]) => unitEnvironment(name, value)),
    `ExecStart=${execStart(argv)}`,
    'Restart=always',
    'RestartSec=2',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

function readToken(values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv, context: InstallContext): string {
  const flag = values.token as string | undefined;
  const file = (values['token-file'] as string | undefined) ?? (flag === undefined ? env.CROSSDOCK_TOKEN_FILE : undefined);
  if (flag !== undefined && values['token-file'] !== undefined) throw new UsageError('give --token or --token-file, not both');
  let token = flag ?? (file === undefined ? env.CROSSDOCK_TOKEN : undefined);
  if (token === undefined && file !== undefined) {
    try {
      token = file === '-' ? (context.stdin ?? (() => readFileSync(0, 'utf8')))() : readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(
        `cannot read the token from ${file === '-' ? 'standard input' : file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
  }
  token = token?.trim();
  if (!token)
    throw new UsageError(
      'no host token given; pass --token (the token POST /v1/hosts answered with), --token-file PATH, or --token-file - to read it from standard input',
    );
  if (!/^[\x21-\x7e]+$/.test(token))
    throw new UsageError('the host token holds spaces or characters outside printable ASCII; copy it again from the POST /v1/hosts answer');
  return token;
}

function planInstall(argv: string[], env: NodeJS.ProcessEnv, context: InstallContext) {
  const values = parse(argv, {
    controller: { type: 'string' },
    token: { type: 'string' },
    'token-file': { type: 'string' },
    'ca-fingerprint': { type: 'string' },
    'ca-file': { type: 'string' },
    root: { type: 'string' },
    'dry-run': { type: 'boolean' },
    'docker-host': { type: 'string' },
    transport: { type: 'string' },
    'reconcile-interval-ms': { type: 'string' },
    'daemon-json': { type: 'string' },
    'allow-engine-restart': { type: 'boolean' },
    'engine-restart-command': { type: 'string' },
    'ipam-socket': { type: 'string' },
    'ipam-state': { type: 'string' },
  });
  const { root, live } = resolveRoot(values.root as string | undefined, context);
  const controller = (values.controller as string | undefined) ?? env.CROSSDOCK_CONTROLLER;
  if (controller === undefined)
    throw new UsageError('no controller given; pass --controller http://<controller>:7800 (the join line from POST /v1/hosts has it)');
  const token = readToken(values, env, context);

  // The service's settings, checked by the same code that will read them when it starts.
  const settings: [string, string][] = [['CROSSDOCK_CONTROLLER', controller]];
  const runArgv = ['--controller', controller, '--token', token];
  for (const [flag, name] of UNIT_SETTINGS) {
    const value = values[flag] as string | undefined;
    if (value === undefined) continue;
    settings.push([name, value]);
    runArgv.push(`--${flag}`, value);
  }
  if (values['allow-engine-restart']) {
    settings.push(['CROSSDOCK_ALLOW_ENGINE_RESTART', 'true']);
    runArgv.push('--allow-engine-restart');
  }
  const caFingerprint = values['ca-fingerprint'] as string | undefined;
  const caFile = values['ca-file'] as string | undefined;
  if (caFingerprint !== undefined) {
    settings.push(['CROSSDOCK_CA_FINGERPRINT', caFingerprint]);
    runArgv.push('--ca-fingerprint', caFingerprint);
  }
  let caPem: Buffer | undefined;
  if (caFile !== undefined) {
    settings.push(['CROSSDOCK_CA_FILE', INSTALL_PATHS.ca]);
    runArgv.push('--ca-file', caFile);
  }
  settings.push(['CROSSDOCK_TOKEN_FILE', INSTALL_PATHS.token]);
  try {
    loadConfig(runArgv, {});
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message.replace(/; see --help$/, ''));
    throw error;
  }
  let trust: ControllerTrust | undefined;
  if (caFingerprint !== undefined || caFile !== undefined) {
    try {
      trust = new ControllerTrust({ caFingerprint, caFile });
    } catch (error) {
      if (error instanceof TrustError) throw new UsageError(error.message);
      throw error;
    }
    if (caFile !== undefined) caPem = Buffer.from(`${trust.trustedCertificates!.join('\n')}\n`);
  }

  const build = context.build ?? ownBuild();
  if (build.kind === 'checkout') {
    throw new UsageError(
      'install copies the one-file executor, and this is a checkout; run `npm run build` and then `node executor/dist/crossdock-executor.mjs install ...`',
    );
  }
  const program = path.posix.join(INSTALL_PATHS.programDir, programName(build.kind));
  const unit = renderUnit({ kind: build.kind, nodePath: context.nodePath ?? process.execPath, environment: settings });
  const artifacts: Artifact[] = [
    { kind: 'file', path: program, content: readFileSync(build.file), mode: 0o755, describe: `the executor ${EXECUTOR_VERSION}` },
    { kind: 'symlink', path: INSTALL_PATHS.command, target: path.posix.relative(path.posix.dirname(INSTALL_PATHS.command), program), describe: 'the command' },
    { kind: 'file', path: INSTALL_PATHS.token, content: Buffer.from(`${token}\n`), mode: 0o600, describe: 'the host token', secret: true },
    ...(caPem ? [{ kind: 'file', path: INSTALL_PATHS.ca, content: caPem, mode: 0o644, describe: "the controller's CA" } as const] : []),
    { kind: 'file', path: INSTALL_PATHS.unit, content: Buffer.from(unit), mode: 0o644, describe: 'the systemd unit' },
  ];
  const handStart = shellLine(['env', ...settings.map(([name, value]) => `${name}=${value}`), INSTALL_PATHS.command]);
  return { root, live, dryRun: values['dry-run'] === true, artifacts, handStart, controller, trust };
}

function isCurrent(artifact: Artifact, file: string): boolean {
  try {
    const stat = lstatSync(file);
    if (artifact.kind === 'symlink') return stat.isSymbolicLink() && readlinkSync(file) === artifact.target;
    return stat.isFile() && (stat.mode & 0o7777) === artifact.mode && readFileSync(file).equals(artifact.content);
  } catch {
    return false;
  }
}

async function put(artifact: Artifact, file: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.new`);
  try {
    if (artifact.kind === 'symlink') {
      await symlink(artifact.target, temporary);
    } else {
      // Created with its final mode (no moment where the token is readable), and chmod for the umask.
      await writeFile(temporary, artifact.content, { mode: artifact.mode, flag: 'wx' });
      await chmod(temporary, artifact.mode);
    }
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

const octal = (mode: number) => `0${mode.toString(8)}`;

function describeWrite(artifact: Artifact, file: string, verb: string): string {
  if (artifact.kind === 'symlink') return `${verb} ${file} -> ${artifact.target} (${artifact.describe})`;
  return `${verb} ${file} (${artifact.describe}, mode ${octal(artifact.mode)}, ${artifact.content.length} bytes)`;
}

export async function install(argv: string[], env: NodeJS.ProcessEnv, context: InstallContext): Promise<number> {
  const { print, services } = context;
  const { root, live, dryRun, artifacts, handStart, controller, trust } = planInstall(argv, env, context);
  const systemd = live && services.running;
  // On the host itself, a controller that is not the pinned one is refused before anything is written.
  if (live && trust) {
    try {
      await trust.tlsOptions(controller);
      print(`the controller at ${controller} presents the pinned CA ${trust.fingerprint ?? `from ${INSTALL_PATHS.ca}`}`);
    } catch (error) {
      if (error instanceof TrustError) throw new UsageError(`${error.message}; nothing was installed`);
      print(`could not check the controller's certificate now (${(error as Error).message}); the service checks it on every connection`);
    }
  }
  let changed = 0;
  for (const artifact of artifacts) {
    const file = under(root, artifact.path);
    if (isCurrent(artifact, file)) {
      print(`${file} is up to date`);
      continue;
    }
    changed++;
    if (dryRun) {
      print(describeWrite(artifact, file, 'would write'));
      if (artifact.kind === 'file' && artifact.path === INSTALL_PATHS.unit) print(artifact.content.toString().replace(/^/gm, '    '));
      continue;
    }
    try {
      await put(artifact, file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const hint = code === 'EACCES' || code === 'EPERM' ? '; install needs root (sudo)' : '';
      print(`cannot write ${file}: ${code ?? (error as Error).message}${hint}`);
      return EXIT_INCOMPLETE;
    }
    print(describeWrite(artifact, file, 'wrote'));
  }

  const steps = [['daemon-reload'], ['enable', UNIT_NAME], [changed > 0 ? 'restart' : 'start', UNIT_NAME]];
  if (dryRun) {
    if (systemd) for (const step of steps) print(`would run: systemctl ${step.join(' ')}`);
    print('dry run: nothing was changed');
    return 0;
  }
  if (!live) {
    print(`written under ${root}; systemd was left alone (--root). On the target: systemctl daemon-reload && systemctl enable --now ${UNIT_NAME}`);
    return 0;
  }
  if (!systemd) {
    print(`systemd is not running on this machine (no /run/systemd/system), so the service was not started. Start the executor by hand, as root:`);
    print(`  ${handStart}`);
    return 0;
  }
  for (const step of steps) {
    const result = await services.systemctl(step);
    if (!result.ok) {
      print(`systemctl ${step.join(' ')} failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
      return EXIT_INCOMPLETE;
    }
  }
  print(`${UNIT_NAME} is enabled and ${changed > 0 ? 'was (re)started' : 'running'}; follow its log with: journalctl -u crossdock-executor -f`);
  return 0;
}

function exists(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

async function removeIfEmpty(dir: string): Promise<void> {
  if (existsSync(dir) && statSync(dir).isDirectory() && (await readdir(dir)).length === 0) await rmdir(dir);
}

export async function uninstall(argv: string[], env: NodeJS.ProcessEnv, context: UninstallContext): Promise<number> {
  const { print, services } = context;
  const values = parse(argv, { root: { type: 'string' }, 'dry-run': { type: 'boolean' }, purge: { type: 'boolean' }, 'docker-host': { type: 'string' } });
  if (values['docker-host'] !== undefined && !values.purge) throw new UsageError('--docker-host is only for --purge');
  const { root, live } = resolveRoot(values.root as string | undefined, context);
  const dryRun = values['dry-run'] === true;
  const systemd = live && services.running;
  const verb = dryRun ? 'would remove' : 'removed';
  let incomplete = false;

  const unit = under(root, INSTALL_PATHS.unit);
  if (systemd && exists(unit)) {
    if (dryRun) print(`would run: systemctl disable --now ${UNIT_NAME}`);
    else {
      const result = await services.systemctl(['disable', '--now', UNIT_NAME]);
      print(result.ok ? `stopped and disabled ${UNIT_NAME}` : `systemctl disable --now ${UNIT_NAME} failed: ${result.stderr.trim()}`);
      incomplete ||= !result.ok;
    }
  } else if (!systemd && live && !dryRun) {
    print('systemd is not running on this machine: stop an executor started by hand yourself (it would put back what --purge removes)');
  }

  if (values.purge) {
    const dockerHost = (values['docker-host'] as string | undefined) ?? env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
    const drivers = context.drivers(dockerHost);
    if (dryRun) {
      const routes = await drivers.ip.observeRoutes();
      const firewall = await drivers.iptables.observe();
      const networks = ((await drivers.docker.observe().catch(() => undefined))?.networks ?? []).filter((n) => n.labels[MANAGED_LABEL] === 'true');
      print(`would remove ${routes.length} route(s) of crossdock's protocol: ${routes.map((r) => r.dst).join(', ') || 'none'}`);
      print(`would remove firewall chains: ${firewall.chains.map((c) => `${c.table}/${c.name}`).join(', ') || 'none'}`);
      for (const network of networks) {
        print(
          network.containers > 0
            ? `would keep Docker network ${network.name}: ${network.containers} container(s) attached`
            : `would remove Docker network ${network.name}`,
        );
      }
    } else {
      // removeEverything goes on without Docker (a revoked host must still lose its routes); here
      // the operator asked for a clean host, so a Docker that does not answer is said.
      const docker = await drivers.docker.observe().catch((error: Error) => ({ available: false, error: error.message }));
      if (!docker.available) {
        print(
          `Docker did not answer at ${dockerHost}${'error' in docker && docker.error ? ` (${docker.error})` : ''}: crossdock's Docker networks were not removed; pass --docker-host`,
        );
        incomplete = true;
      }
      const report = await removeEverything(drivers);
      print(`removed ${report.routes} route(s), crossdock's firewall chains and ${report.networks} Docker network(s)`);
      for (const line of report.refused) print(line);
      if (report.refused.length > 0) {
        incomplete = true;
        print('what was kept is named above; a kept network can be removed with `docker network rm <name>` once its containers are gone');
      }
    }
  }

  const files = [
    INSTALL_PATHS.unit,
    INSTALL_PATHS.command,
    ...PROGRAM_NAMES.map((name) => path.posix.join(INSTALL_PATHS.programDir, name)),
    INSTALL_PATHS.token,
    INSTALL_PATHS.ca,
  ];
  let found = 0;
  for (const relative of files) {
    const file = under(root, relative);
    if (!exists(file)) continue;
    if (lstatSync(file).isDirectory()) {
      print(`${file} is a directory, not crossdock's file; left it alone`);
      incomplete = true;
      continue;
    }
    found++;
    if (!dryRun) await rm(file);
    print(`${verb} ${file}`);
  }
  if (!dryRun) {
    await removeIfEmpty(under(root, INSTALL_PATHS.tokenDir));
    await removeIfEmpty(under(root, INSTALL_PATHS.programDir));
  }
  if (found === 0) print(`crossdock-executor is not installed under ${root}: nothing to remove`);
  if (systemd && found > 0 && !dryRun) {
    const result = await services.systemctl(['daemon-reload']);
    if (!result.ok) print(`systemctl daemon-reload failed: ${result.stderr.trim()}`);
  }
  if (dryRun) print('dry run: nothing was changed');
  else if (found > 0) print('the host is still registered on the controller: DELETE /v1/hosts/<name> there releases its subnets');
  return incomplete ? EXIT_INCOMPLETE : 0;
}
