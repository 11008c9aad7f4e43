// Throwaway network namespaces for the drivers' real tests.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Ours inside cdtest-*: other suites may be using their own namespaces at the same time. */
export const NS_PREFIX = 'cdtest-drv-';

export function listNamespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

/** Deletes namespaces an interrupted run of these suites left behind. */
export function cleanLeftoverNamespaces(): void {
  for (const name of listNamespaces().filter((n) => n.startsWith(NS_PREFIX))) {
    execFileSync('ip', ['netns', 'delete', name]);
  }
}

export function createNamespace(purpose: string): string {
  const name = `${NS_PREFIX}${purpose}-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name]);
  inNs(name, ['ip', 'link', 'set', 'lo', 'up']);
  return name;
}

export function deleteNamespace(name: string): void {
  if (listNamespaces().includes(name)) execFileSync('ip', ['netns', 'delete', name]);
}

/** Runs argv in the namespace; throws with its stderr on failure. */
export function inNs(name: string, argv: string[], input?: string): string {
  return execFileSync('nsenter', [`--net=/run/netns/${name}`, ...argv], {
    input,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}
