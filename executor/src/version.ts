// The executor's own version (executor/package.json's; version.test.ts keeps the two equal),
// and how this copy of the program was built, which `install` needs to know what to copy.

export const EXECUTOR_VERSION = '0.1.0';

/**
 * Set by scripts/build.mjs: "onefile" in executor/dist/crossdock-executor.mjs (every dependency
 * inside), "sea" in the single executable; absent in the sources and in dist/main.mjs, which
 * need a checkout's node_modules and so cannot be copied to a host on their own.
 */
declare const __CROSSDOCK_BUILD__: 'onefile' | 'sea' | undefined;

export type BuildKind = 'onefile' | 'sea' | 'checkout';

export function buildKind(): BuildKind {
  return typeof __CROSSDOCK_BUILD__ === 'undefined' ? 'checkout' : __CROSSDOCK_BUILD__;
}
