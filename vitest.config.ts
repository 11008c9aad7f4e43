import { defineConfig } from 'vitest/config';

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
