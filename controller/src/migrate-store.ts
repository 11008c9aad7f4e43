// Entry point of `npm run migrate-store -- --from file:./data/crossdock.db --to postgresql://...`:
// copies a controller's store into an empty database (store-migration.ts does the work).
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, parseDatabase } from './config.ts';
import { describeDatabase, type DatabaseConfig } from './db/client.ts';
import { migrateStore, StoreMigrationError } from './store-migration.ts';

const USAGE = `usage: npm run migrate-store -- --from DATABASE --to DATABASE
  --from file:PATH | postgresql://...   the controller's current database (stop the controller first)
  --to   postgresql://... | file:PATH   an empty database to copy everything into
Copies pools, reserved ranges, hosts (with their tokens), subnets and jobs, ids unchanged, in one
transaction; refuses a target that holds anything.`;

function fail(message: string, code = 2): never {
  console.error(`migrate-store: ${message}`);
  process.exit(code);
}

function parse(argv: string[]): { from: DatabaseConfig; to: DatabaseConfig } | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { from: { type: 'string' }, to: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    fail(`${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) return 'help';
  if (!values.from || !values.to) fail(`both --from and --to are needed\n${USAGE}`);
  try {
    // npm runs scripts from the checkout: a relative file: is relative to where the operator stood.
    const cwd = process.env.INIT_CWD ?? process.cwd();
    return { from: parseDatabase(values.from, cwd), to: parseDatabase(values.to, cwd) };
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
}

const options = parse(process.argv.slice(2));
if (options === 'help') {
  console.log(USAGE);
} else {
  try {
    const counts = await migrateStore(options.from, options.to, (line) => console.log(line));
    console.log(
      `copied into ${describeDatabase(options.to)}: ${counts.Pool} pools, ${counts.ReservedRange} reserved ranges, ${counts.Host} hosts, ${counts.Subnet} subnets, ${counts.Job} jobs`,
    );
    if (options.from.kind === 'sqlite') {
      console.log(
        `start the controller with CROSSDOCK_DB set to the new database and CROSSDOCK_ADMIN_TOKEN to the token in ${path.join(path.dirname(options.from.file), 'admin-token')} (unless you configured one)`,
      );
    }
  } catch (error) {
    if (error instanceof StoreMigrationError) fail(error.message, 1);
    fail(`the copy failed and nothing was committed to the target: ${(error as Error).message}`, 1);
  }
}
