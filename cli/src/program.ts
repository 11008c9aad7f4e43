// The command tree (commander) and how a run ends: output on stdout, errors on stderr as
// `error CODE: message` with exit status 1, usage errors with the command's help and status 2.
import { Command, CommanderError, InvalidArgumentError, Option, type CommandOptions } from 'commander';
import packageJson from '../package.json' with { type: 'json' };
import { ApiClient, type ApiResponse } from './client.ts';
import { checkoutRoot, DEFAULT_CONTROLLER, resolveConnection } from './connection.ts';
import { CliError } from './errors.ts';
import { Output, colourWanted } from './output.ts';
import { registerCompletion } from './commands/completion.ts';
import { registerHosts } from './commands/hosts.ts';
import { registerJobs } from './commands/jobs.ts';
import { registerPlan } from './commands/plan.ts';
import { registerPools } from './commands/pools.ts';
import { registerStatus } from './commands/status.ts';
import { registerSubnets } from './commands/subnets.ts';
import { registerTls } from './commands/tls.ts';
import { registerWait } from './commands/wait.ts';

export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;
const COMMON_OPTIONS_HEADING = 'Connection and output:';

export interface Streams {
  stdout: NodeJS.WriteStream | { write(text: string): unknown; isTTY?: boolean };
  stderr: NodeJS.WriteStream | { write(text: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

/** What every command's action gets. */
export class Context {
  readonly out: Output;
  readonly stderrColour: boolean;
  private clientOf: ApiClient | undefined;

  constructor(readonly streams: Streams) {
    this.out = new Output(colourWanted(streams.stdout, streams.env), streams.stdout);
    this.stderrColour = colourWanted(streams.stderr, streams.env);
  }

  /** The client for a command's --controller/--token (or the environment, or the token file). */
  client(command: Command): ApiClient {
    if (!this.clientOf) {
      const opts = command.optsWithGlobals<{ controller?: string; token?: string; caFile?: string; caFingerprint?: string }>();
      this.clientOf = new ApiClient(resolveConnection(opts, this.streams.env, checkoutRoot()));
    }
    return this.clientOf;
  }

  json(command: Command): boolean {
    return command.optsWithGlobals<{ json?: boolean }>().json === true;
  }

  /** --json: the API's body exactly as it came (nothing for a 204). */
  printJson(response: ApiResponse): void {
    if (response.text !== '') this.streams.stdout.write(response.text.endsWith('\n') ? response.text : `${response.text}\n`);
  }

  /** A line on stderr: progress and notes that must not mix with what scripts read. */
  note(text: string): void {
    this.streams.stderr.write(`${text}\n`);
  }

  get stderrIsTTY(): boolean {
    return this.streams.stderr.isTTY === true;
  }
}

/** Adds the options every command takes, grouped apart in its help. */
export function withCommonOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--controller <urls>',
        `controller URL, or several comma-separated (the leader is found) (env: CROSSDOCK_CONTROLLER, default ${DEFAULT_CONTROLLER})`,
      ).helpGroup(COMMON_OPTIONS_HEADING),
    )
    .addOption(
      new Option('--token <token>', "admin token (env: CROSSDOCK_ADMIN_TOKEN; default: the checkout's data/admin-token)").helpGroup(COMMON_OPTIONS_HEADING),
    )
    .addOption(
      new Option('--ca-file <path>', "trust only the CA(s) in this PEM file (env: CROSSDOCK_CA_FILE; default: the checkout's data/ca.pem)").helpGroup(
        COMMON_OPTIONS_HEADING,
      ),
    )
    .addOption(
      new Option('--ca-fingerprint <sha256>', 'trust only a controller whose CA has this fingerprint (env: CROSSDOCK_CA_FINGERPRINT)').helpGroup(
        COMMON_OPTIONS_HEADING,
      ),
    )
    .addOption(new Option('--json', "print the API's JSON exactly, for scripts").helpGroup(COMMON_OPTIONS_HEADING));
}

/** A command that does one thing: common options, an example in its help, errors mapped. */
export function leaf(parent: Command, spec: string, description: string, examples: string[], options?: CommandOptions): Command {
  const command = parent.command(spec, options).description(description);
  withCommonOptions(command);
  command.addHelpText('after', `\nExample${examples.length > 1 ? 's' : ''}:\n${examples.map((e) => `  $ ${e}`).join('\n')}`);
  return command;
}

/** Wraps an action so a CliError with code USAGE is reported as the command's usage error. */
export function act<A extends unknown[]>(handler: (...args: A) => Promise<void>) {
  return async (...args: A) => {
    const command = args.at(-1) as Command;
    try {
      await handler(...args);
    } catch (error) {
      if (error instanceof CliError && error.code === 'USAGE') command.error(error.message, { exitCode: EXIT_USAGE, code: 'crossdock.usage' });
      throw error;
    }
  };
}

export function parsePositiveInteger(name: string, max = 2 ** 31 - 1) {
  return (text: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}`);
    return Number(text);
  };
}

export function buildProgram(ctx: Context): Command {
  const program = new Command('crossdock');
  program
    .description('Operate a crossdock controller: hosts, pools, subnets, plans, jobs, convergence.')
    .version(packageJson.version, '-V, --version', 'print the CLI version')
    .helpOption('-h, --help', 'show help for a command')
    .showHelpAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.streams.stdout.write(text),
      writeErr: (text) => ctx.streams.stderr.write(text),
      outputError: (text, write) => write(`error USAGE: ${text.replace(/^error: /, '')}`),
    });
  withCommonOptions(program);
  program.addHelpText(
    'after',
    `
Examples:
  $ crossdock status
  $ crossdock hosts add node-1 192.168.32.20
  $ crossdock wait --timeout 2m
  $ crossdock hosts ls --json | jq '.items[].name'

The token defaults to the data/admin-token file a controller started from this checkout saved.
Errors go to stderr as "error CODE: message" with exit status 1; usage errors exit with 2.`,
  );
  registerStatus(program, ctx);
  registerPools(program, ctx);
  registerHosts(program, ctx);
  registerSubnets(program, ctx);
  registerPlan(program, ctx);
  registerJobs(program, ctx);
  registerWait(program, ctx);
  registerTls(program, ctx);
  registerCompletion(program, ctx);
  return program;
}

/** Runs the CLI; resolves to the exit status. */
export async function run(argv: string[], streams: Streams): Promise<number> {
  const ctx = new Context(streams);
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (error instanceof CliError) {
      streams.stderr.write(`error ${error.code}: ${error.message}\n`);
      return error.code === 'USAGE' ? EXIT_USAGE : EXIT_ERROR;
    }
    streams.stderr.write(`error INTERNAL: ${(error as Error).stack ?? String(error)}\n`);
    return EXIT_ERROR;
  }
}
