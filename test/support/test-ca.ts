// One CA for the test run, made by the controller's own code: every controller process a suite
// starts is given it (copied beside its database, the way a standby shares its leader's CA), so
// the test processes trust it once through NODE_EXTRA_CA_CERTS (vitest.config.ts) and plain
// fetch and ws reach the controllers over HTTPS. Executors the suites start pin it by
// fingerprint, as a join line would. test/tls.test.ts makes CAs of its own.
//   node --import tsx test/support/test-ca.ts <dir>    creates <dir>/ca.pem and ca-key.pem if missing
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { pemFingerprint } from '@crossdock/shared/trust';
import { CA_CERT_FILE, CA_KEY_FILE, createCertificateAuthority } from '../../controller/src/tls.ts';

/** Set by vitest.config.ts: the directory of the run's CA. */
export const TEST_CA_DIR_ENV = 'CROSSDOCK_TEST_CA_DIR';

/** Copies the run's CA into a controller's data directory (nothing outside a vitest run). Returns its fingerprint. */
export function seedTestCa(dataDir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const from = env[TEST_CA_DIR_ENV];
  if (!from) return undefined;
  mkdirSync(dataDir, { recursive: true });
  for (const file of [CA_CERT_FILE, CA_KEY_FILE]) {
    if (!existsSync(path.join(dataDir, file))) copyFileSync(path.join(from, file), path.join(dataDir, file));
  }
  return pemFingerprint(readFileSync(path.join(dataDir, CA_CERT_FILE), 'utf8'));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: test-ca.ts <dir>');
  mkdirSync(dir, { recursive: true });
  if (!existsSync(path.join(dir, CA_CERT_FILE))) await createCertificateAuthority(dir);
}
