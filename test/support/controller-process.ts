// Starts the real controller (server.ts) as a child process on a SQLite file (or PostgreSQL), for suites
// that test what only a real process shows: listening, concurrency, SIGKILL, restarts.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { seedTestCa } from './test-ca.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const START_TIMEOUT_MS = 30_000;

export interface ControllerProcess {
  /** https:// (TLS is on unless env says CROSSDOCK_TLS=off) */
  url: string;
  /** the CA's fingerprint, as a join line pins it (undefined with TLS off) */
  caFingerprint: string | undefined;
  adminToken: string;
  child: ChildProcess;
  output: () => string;
  /** SIGTERM and wait for exit */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit */
  kill(): Promise<void>;
}

export async function startController(options: {
  /** a SQLite file; or `database` */
  dbFile?: string;
  /** CROSSDOCK_DB as given: file:PATH or postgresql://... */
  database?: string;
  adminToken: string;
  listen?: string;
  env?: Record<string, string>;
  args?: string[];
  /** run the production bundle (controller/dist/server.mjs, from `npm run build`) instead of the sources */
  bundle?: boolean;
}): Promise<ControllerProcess> {
  // The run's CA, unless the suite brings its own certificates or turns TLS off.
  const tlsOff = /^(off|false)$/i.test(options.env?.CROSSDOCK_TLS ?? '');
  const ownCertificates = options.env?.CROSSDOCK_TLS_CERT !== undefined || (options.args ?? []).some((a) => a.startsWith('--tls'));
  // Beside the SQLite file, or (PostgreSQL) a directory of this controller's own.
  const ownTlsDir = options.dbFile ? undefined : mkdtempSync(path.join(tmpdir(), 'crossdock-tls-'));
  const tlsDir = ownTlsDir ?? path.dirname(options.dbFile!);
  if (!tlsOff && !ownCertificates) seedTestCa(tlsDir);
  const entry = options.bundle ? ['controller/dist/server.mjs'] : ['--import', 'tsx', 'controller/src/server.ts'];
  // CROSSDOCK_TEST_CONTROLLER_NODE_ARGS: flags for node itself, to profile a suite's controller (--cpu-prof ...).
  const nodeArgs = (process.env.CROSSDOCK_TEST_CONTROLLER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const argv = [process.execPath, ...nodeArgs, ...entry, ...(options.args ?? [])];
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      CROSSDOCK_LISTEN: options.listen ?? '127.0.0.1:0',
      CROSSDOCK_DB: options.database ?? `file:${options.dbFile}`,
      CROSSDOCK_ADMIN_TOKEN: options.adminToken,
      CROSSDOCK_LOG_LEVEL: 'warn',
      CROSSDOCK_TLS_DIR: tlsDir,
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  // The directory made here goes with the process (a suite with a SQLite file removes its own).
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      if (ownTlsDir) rmSync(ownTlsDir, { recursive: true, force: true });
      resolve();
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`controller did not start within ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
    const check = () => {
      const match = /listening on (https?:\/\/\S+)/.exec(output);
      if (match && (match[1]!.startsWith('http:') || /CA fingerprint[^\n]*: sha256:[0-9a-f]{64}\n/.test(output))) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`controller exited with ${code} before listening:\n${output}`));
    });
  });
  const stopWith = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  const caFingerprint = /CA fingerprint[^\n]*: (sha256:[0-9a-f]{64})/.exec(output)?.[1];
  return { url, caFingerprint, adminToken: options.adminToken, child, output: () => output, stop: () => stopWith('SIGTERM'), kill: () => stopWith('SIGKILL') };
}

export function api(base: string, token: string) {
  return async function call(method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> {
    const response = await fetch(`${base}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
}
