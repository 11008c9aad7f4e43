// The executor as one Linux executable (`npm run build:sea`): built by the documented command,
// copied alone into an empty directory, run with an empty environment (no PATH, so no node
// from it): it prints its version without a warning (nothing it needs is loaded from disk),
// installs itself under --root as the program the unit runs directly, and uninstalls.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/controller-process.ts';
import { missing } from './support/requirements.ts';

const EXECUTOR_VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'executor/package.json'), 'utf8')) as { version: string }).version;
/** Building takes a minute or two on a busy machine: most of it is postject rewriting the 96 MiB binary. */
const BUILD_TIMEOUT_MS = 600_000;

describe.skipIf(missing('sea'))('the single executable (needs a node binary with the SEA fuse)', () => {
  let work: string;
  let binary: string;
  const run = (args: string[]) => spawnSync(binary, args, { cwd: path.dirname(binary), encoding: 'utf8', env: {} });

  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), 'crossdock-sea-test-'));
    const built = path.join(work, 'build', 'crossdock-executor');
    mkdirSync(path.dirname(built));
    execFileSync(process.execPath, ['scripts/build-sea.mjs', built], { cwd: REPO_ROOT, stdio: 'pipe', timeout: BUILD_TIMEOUT_MS });
    mkdirSync(path.join(work, 'alone'));
    binary = path.join(work, 'alone', 'crossdock-executor');
    copyFileSync(built, binary);
  }, BUILD_TIMEOUT_MS);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('runs alone, with no environment, and prints its version and nothing else', () => {
    expect(readdirSync(path.dirname(binary))).toEqual(['crossdock-executor']);
    expect(run(['--version'])).toMatchObject({ status: 0, stdout: `${EXECUTOR_VERSION}\n`, stderr: '' });
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('crossdock-executor install --controller URL --token TOKEN');
  });

  it('installs itself under --root as the program the unit runs, and uninstalls', () => {
    const root = path.join(work, 'root');
    const install = run(['install', '--root', root, '--controller', 'http://192.168.32.5:7800', '--token', 'cdh_sea-test']);
    expect(install.stderr).toBe('');
    expect(install.status).toBe(0);
    const program = path.join(root, 'usr/local/lib/crossdock/crossdock-executor');
    expect(readFileSync(program).equals(readFileSync(binary))).toBe(true);
    expect(lstatSync(program).mode & 0o777).toBe(0o755);
    expect(readlinkSync(path.join(root, 'usr/local/bin/crossdock-executor'))).toBe('../lib/crossdock/crossdock-executor');
    expect(readFileSync(path.join(root, 'etc/systemd/system/crossdock-executor.service'), 'utf8')).toContain(
      '\nExecStart=/usr/local/lib/crossdock/crossdock-executor\n',
    );
    expect(lstatSync(path.join(root, 'etc/crossdock/token')).mode & 0o777).toBe(0o600);
    expect(spawnSync(path.join(root, 'usr/local/bin/crossdock-executor'), ['--version'], { encoding: 'utf8', env: {} }).stdout).toBe(`${EXECUTOR_VERSION}\n`);

    expect(run(['uninstall', '--root', root]).status).toBe(0);
    for (const gone of ['usr/local/lib/crossdock', 'usr/local/bin/crossdock-executor', 'etc/crossdock', 'etc/systemd/system/crossdock-executor.service']) {
      expect(existsSync(path.join(root, gone)), gone).toBe(false);
    }
  });
});
