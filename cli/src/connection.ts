// Where the CLI connects and with which token: flags, then environment, then (for the token)
// the admin-token file the controller saved beside its default database, when the CLI runs
// from a checkout.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError } from './errors.ts';

export const DEFAULT_CONTROLLER = 'http://127.0.0.1:7800';
/** The controller's default database (controller/src/config.ts), relative to the checkout. */
const DEFAULT_DATABASE_DIR = 'data';

export interface Connection {
  controllers: string[];
  token: string | undefined;
  /** where the token came from, for error messages */
  tokenSource: string;
}

/** The checkout this CLI runs from (cli/src/*.ts or cli/dist/*.mjs), or null when installed elsewhere. */
export function checkoutRoot(moduleUrl = import.meta.url): string | null {
  const root = path.resolve(path.dirname(fileURLToPath(moduleUrl)), '../..');
  return existsSync(path.join(root, 'pnpm-workspace.yaml')) && existsSync(path.join(root, 'cli', 'package.json')) ? root : null;
}

/** Parses "http://a:7800,http://b:7800" into URLs without a trailing slash. */
export function parseControllers(text: string): string[] {
  const urls = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (urls.length === 0) throw new CliError('USAGE', 'no controller URL given; use --controller http://HOST:7800 (several, comma-separated)');
  return urls.map((raw) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new CliError('USAGE', `controller ${JSON.stringify(raw)} is not a URL; use something like http://192.168.32.5:7800`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new CliError('USAGE', `controller ${JSON.stringify(raw)} is not an http(s) URL; use something like http://192.168.32.5:7800`);
    }
    return url.href.replace(/\/+$/, '');
  });
}

/** The token file of a local controller: beside CROSSDOCK_DB if set, else beside the checkout's default database. */
export function defaultTokenFile(env: NodeJS.ProcessEnv, root: string | null): string | null {
  const db = env.CROSSDOCK_DB;
  if (db?.startsWith('file:')) return path.join(path.dirname(path.resolve(db.slice('file:'.length))), 'admin-token');
  return root ? path.join(root, DEFAULT_DATABASE_DIR, 'admin-token') : null;
}

export function resolveConnection(options: { controller?: string; token?: string }, env: NodeJS.ProcessEnv, root: string | null): Connection {
  const controllers = parseControllers(options.controller ?? env.CROSSDOCK_CONTROLLER ?? DEFAULT_CONTROLLER);
  if (options.token) return { controllers, token: options.token, tokenSource: '--token' };
  if (env.CROSSDOCK_ADMIN_TOKEN) return { controllers, token: env.CROSSDOCK_ADMIN_TOKEN, tokenSource: 'CROSSDOCK_ADMIN_TOKEN' };
  const file = defaultTokenFile(env, root);
  if (file && existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token) return { controllers, token, tokenSource: file };
  }
  return { controllers, token: undefined, tokenSource: file ? `none (no --token, no CROSSDOCK_ADMIN_TOKEN, no ${file})` : 'none' };
}
