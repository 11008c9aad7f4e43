/** An error the CLI reports as `error CODE: message` (exit 1), or as a usage error (code USAGE, exit 2). */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
