// Where the CLI connects and with which token: flags, then environment, then (for the token)
// the admin-token file the controller saved beside its default database, when the CLI runs
// from a checkout.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControllerTrust, TrustError } from '@crossdock/shared/trust';
import { CliError } from './errors.ts';

export const DEFAULT_CONTROLLER = 'https://127.0.0.1:7800';
/** The controller's default database (controller/src/config.ts), relative to the checkout. */
const DEFAULT_DATABASE_DIR = 'data';

export interface Connection {
  controllers: string[];
  token: string | undefined;
  /** where the token came from, for error messages */
  tokenSource: string;
  /** how the controllers' certificates are verified */
  trust?: ControllerTrust;
  /** where that trust came from, for error messages */
  trustSource?: string;
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
  if (urls.length === 0) throw new CliError('USAGE', 'no controller URL given; use --controller https://HOST:7800 (several, comma-separated)');
  return urls.map((raw) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new CliError('USAGE', `controller ${JSON.stringify(raw)} is not a URL; use something like https://192.168.32.5:7800`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new CliError('USAGE', `controller ${JSON.stringify(raw)} is not an http(s) URL; use something like https://192.168.32.5:7800`);
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

/**
 * How the CLI trusts its controllers: --ca-fingerprint / --ca-file (or their environment
 * variables), else the CA the local controller saved beside its database (data/ca.pem in the
 * checkout) for https:// controllers, else the system's CAs.
 */
export function resolveTrust(
  options: { caFile?: string; caFingerprint?: string },
  env: NodeJS.ProcessEnv,
  root: string | null,
  controllers: string[],
): { trust: ControllerTrust; trustSource: string } {
  const caFingerprint = options.caFingerprint ?? env.CROSSDOCK_CA_FINGERPRINT;
  const caFile = options.caFile ?? env.CROSSDOCK_CA_FILE;
  try {
    if (caFingerprint || caFile) {
      for (const url of controllers) {
        if (url.startsWith('http://'))
          throw new CliError('USAGE', `controller ${url} is plain http://, but a CA is pinned (--ca-file, --ca-fingerprint); use https://`);
      }
      return {
        trust: new ControllerTrust({ caFingerprint: caFingerprint || undefined, caFile: caFile || undefined }),
        trustSource: caFile ? `the CA in ${caFile}` : `the pinned CA ${caFingerprint}`,
      };
    }
    const tokenFile = defaultTokenFile(env, root);
    const localCa = tokenFile ? path.join(path.dirname(tokenFile), 'ca.pem') : null;
    if (localCa && existsSync(localCa) && controllers.every((url) => url.startsWith('https://'))) {
      return { trust: new ControllerTrust({ caFile: localCa }), trustSource: `the CA in ${localCa}` };
    }
  } catch (error) {
    if (error instanceof TrustError) throw new CliError('USAGE', error.message);
    throw error;
  }
  return { trust: new ControllerTrust(), trustSource: "the system's CAs" };
}

export function resolveConnection(
  options: { controller?: string; token?: string; caFile?: string; caFingerprint?: string },
  env: NodeJS.ProcessEnv,
  root: string | null,
): Connection {
  const controllers = parseControllers(options.controller ?? env.CROSSDOCK_CONTROLLER ?? DEFAULT_CONTROLLER);
  const trust = resolveTrust(options, env, root, controllers);
  if (options.token) return { controllers, token: options.token, tokenSource: '--token', ...trust };
  if (env.CROSSDOCK_ADMIN_TOKEN) return { controllers, token: env.CROSSDOCK_ADMIN_TOKEN, tokenSource: 'CROSSDOCK_ADMIN_TOKEN', ...trust };
  const file = defaultTokenFile(env, root);
  if (file && existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token) return { controllers, token, tokenSource: file, ...trust };
  }
  return { controllers, token: undefined, tokenSource: file ? `none (no --token, no CROSSDOCK_ADMIN_TOKEN, no ${file})` : 'none', ...trust };
}
