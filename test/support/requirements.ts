// Suites that need root, network namespaces or a Docker engine call `needs(...)`.
// Elsewhere they are skipped with one line that says what is missing; under CI (CI=true),
// where .ci/run provides all of it, a missing requirement fails instead of skipping.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { postgresProblem } from './postgres.ts';

export type Requirement = 'root' | 'netns' | 'iptables' | 'dockerd' | 'busybox' | 'chromium' | 'sea' | 'postgres';

/** Debian's chromium: the browser suite drives it with playwright-core (no browser download). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

function commandWorks(file: string, args: string[]): boolean {
  try {
    execFileSync(file, args, { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

const checks: Record<Requirement, () => string | null> = {
  root: () => (process.getuid?.() === 0 ? null : 'not running as root'),
  netns: () => (commandWorks('ip', ['netns', 'list']) ? null : '`ip netns` (iproute2) is not usable'),
  iptables: () => (commandWorks('iptables-save', ['--version']) || commandWorks('iptables', ['--version']) ? null : 'iptables is not installed'),
  dockerd: () => (existsSync('/usr/sbin/dockerd') || commandWorks('dockerd', ['--version']) ? null : 'dockerd (Debian docker.io) is not installed'),
  busybox: () => (existsSync('/bin/busybox') || existsSync('/usr/bin/busybox') ? null : 'busybox-static is not installed'),
  chromium: () => (existsSync(CHROMIUM_PATH) ? null : `${CHROMIUM_PATH} (Debian chromium) is not installed`),
  postgres: postgresProblem,
  // Node's single-executable applications need the fuse string in the node binary (official and Debian builds have it).
  sea: () =>
    readFileSync(process.execPath).includes('NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2') ? null : `${process.execPath} has no single-executable fuse`,
};

/**
 * Returns null when every requirement is met, or a one-line reason to skip.
 * Under CI it throws instead: a suite that CI was meant to run must not silently skip.
 */
export function missing(...requirements: Requirement[]): string | null {
  const reasons = requirements.map((r) => checks[r]()).filter((r): r is string => r !== null);
  if (reasons.length === 0) return null;
  const reason = `skipped: ${reasons.join('; ')} (run as root after .ci/run's apt-get install)`;
  if (process.env.CI === 'true') throw new Error(`CI must run this suite, but ${reasons.join('; ')}`);
  console.warn(reason);
  return reason;
}
