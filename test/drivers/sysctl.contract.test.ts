// One contract for every SysctlDriver: the fake and the real driver on a sysctl tree of its own
// (a temporary directory: the kernel's /proc/sys is this machine's, not a test's to change).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SysctlKey, SysctlSet } from '@crossdock/shared';
import { FakeSysctlDriver } from '../../executor/src/drivers/fake.ts';
import { createSysctlDriver, type SysctlDriver } from '../../executor/src/drivers/sysctl.ts';

/** A host where net.ipv4.ip_forward is 0. */
interface SysctlHost {
  driver: SysctlDriver;
  /** the kernel has no such key (an old kernel, a module not loaded) */
  remove(key: SysctlKey): void;
  close(): void;
}

const subjects: Array<{ name: string; open(): SysctlHost }> = [
  {
    name: 'fake',
    open() {
      const driver = new FakeSysctlDriver();
      return { driver, remove: (key) => void (driver.values[key] = null), close: () => {} };
    },
  },
  {
    name: 'real, on a temporary sysctl tree',
    open() {
      const root = mkdtempSync(join(tmpdir(), 'cdtest-drv-sysctl-'));
      mkdirSync(join(root, 'net', 'ipv4'), { recursive: true });
      writeFileSync(join(root, 'net', 'ipv4', 'ip_forward'), '0\n');
      return {
        driver: createSysctlDriver({ root }),
        // its directory too: /proc/sys does not create a file that is written to, a directory does
        remove: (key) => rmSync(join(root, ...key.split('.').slice(0, -1)), { recursive: true }),
        close: () => rmSync(root, { recursive: true, force: true }),
      };
    },
  },
];

const forwarding: SysctlSet = { kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' };

for (const subject of subjects) {
  describe(`SysctlDriver contract: ${subject.name}`, () => {
    let host: SysctlHost;
    beforeEach(() => {
      host = subject.open();
    });
    afterEach(() => host.close());

    it('observes every allow-listed key', async () => {
      expect(await host.driver.observe()).toEqual({ 'net.ipv4.ip_forward': '0' });
    });

    it('writes a value and reads it back; writing it again is the same', async () => {
      const written = { ok: true, exitCode: null, stdout: 'net.ipv4.ip_forward = 1\n', stderr: '', durationMs: expect.any(Number) };
      expect(await host.driver.write(forwarding)).toEqual(written);
      expect(await host.driver.write(forwarding)).toEqual(written);
      expect(await host.driver.observe()).toEqual({ 'net.ipv4.ip_forward': '1' });
    });

    it('refuses a key off the allow-list, even past the types, and changes nothing', async () => {
      const result = await host.driver.write({ kind: 'sysctl.set', key: 'kernel.panic', value: '1' } as unknown as SysctlSet);
      expect(result).toMatchObject({ ok: false, exitCode: null, stdout: '' });
      expect(result.stderr).toContain('key: must be one of "net.ipv4.ip_forward"');
      expect(await host.driver.observe()).toEqual({ 'net.ipv4.ip_forward': '0' });
    });

    it('observes a key the kernel does not have as null, and fails to write it, saying why', async () => {
      host.remove('net.ipv4.ip_forward');
      expect(await host.driver.observe()).toEqual({ 'net.ipv4.ip_forward': null });
      const result = await host.driver.write(forwarding);
      expect(result).toMatchObject({ ok: false, exitCode: null, stdout: '' });
      expect(result.stderr).toMatch(/^cannot set net\.ipv4\.ip_forward: ENOENT: no such file or directory, open '\S+\/net\/ipv4\/ip_forward'\n$/);
    });
  });
}
