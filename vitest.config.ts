import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The run's CA (test/support/test-ca.ts): controllers the suites start serve certificates it
// signed, and every test process (forked after this line) trusts it, so the suites speak HTTPS.
const root = path.dirname(fileURLToPath(import.meta.url));
const caDir = path.join(root, 'test', 'output', 'tls-ca');
if (!existsSync(path.join(caDir, 'ca-key.pem'))) {
  execFileSync(process.execPath, ['--import', 'tsx', path.join(root, 'test', 'support', 'test-ca.ts'), caDir], { cwd: root, stdio: 'inherit' });
}
process.env.CROSSDOCK_TEST_CA_DIR = caDir;
process.env.NODE_EXTRA_CA_CERTS = path.join(caDir, 'ca.pem');

export default defineConfig({
  test: {
    include: ['cli/src/**/*.test.ts', 'controller/src/**/*.test.ts', 'executor/src/**/*.test.ts', 'shared/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // The root/namespace/docker suites share kernel state; files run one at a time.
    fileParallelism: false,
    // Executors that tests start serve no Docker IPAM plugin in this machine's /run/docker/plugins,
    // where other engines would find it; the lab gives each of its engines its own directory.
    env: { CROSSDOCK_IPAM_SOCKET: 'off' },
  },
});
