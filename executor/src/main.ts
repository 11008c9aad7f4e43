// Entry point of the executor: runs the command line (cli.ts) and exits with its status. No
// top-level await, so that the same entry bundles as CommonJS for the single executable.
import { main } from './cli.ts';

main(process.argv.slice(2), process.env).then(
  (status) => process.exit(status),
  (error: unknown) => {
    console.error('crossdock-executor:', error);
    process.exit(1);
  },
);
