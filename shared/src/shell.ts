// The join line: what the controller tells an operator to run on a new host.
import { shellQuote } from './commands/render.ts';

/** The file `npm run build` writes: the whole executor in one ES module. */
export const EXECUTOR_ONE_FILE = 'crossdock-executor.mjs';

export function shellLine(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/**
 * What to run on a new host (as root) with the one-file executor copied into the current
 * directory: it installs the executor as a service connected to `controllerUrl`, trusting only
 * the controller whose CA has `caFingerprint` (none: a controller with TLS off, or behind a proxy).
 */
export function joinLine(controllerUrl: string, token: string, caFingerprint?: string): string {
  return shellLine([
    'node',
    EXECUTOR_ONE_FILE,
    'install',
    '--controller',
    controllerUrl,
    '--token',
    token,
    ...(caFingerprint ? ['--ca-fingerprint', caFingerprint] : []),
  ]);
}
