import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SysctlKey, SysctlSet } from '@crossdock/shared';
import { createSysctlDriver } from './sysctl.ts';

describe('SysctlDriver on a temporary sysctl tree', () => {
  let root = '';
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cdtest-drv-sysctl-'));
    mkdirSync(join(root, 'net', 'ipv4'), { recursive: true });
    writeFileSync(join(root, 'net', 'ipv4', 'ip_forward'), '0\n');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('reads and observes allow-listed keys', async () => {
    const driver = createSysctlDriver({ root });
    expect(await driver.read('net.ipv4.ip_forward')).toBe('0');
    expect(await driver.observe()).toEqual({ 'net.ipv4.ip_forward': '0' });
  });

  it('writes a value and confirms it reads back', async () => {
    const result = await createSysctlDriver({ root }).write({ kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' });
    expect(result).toMatchObject({ ok: true, exitCode: null, stdout: 'net.ipv4.ip_forward = 1\n' });
    expect(readFileSync(join(root, 'net', 'ipv4', 'ip_forward'), 'utf8')).toBe('1\n');
  });

  it('refuses keys outside the allow-list, even past the types', async () => {
    const driver = createSysctlDriver({ root });
    const result = await driver.write({ kind: 'sysctl.set', key: 'kernel.panic', value: '1' } as unknown as SysctlSet);
    expect(result).toMatchObject({ ok: false });
    expect(result.stderr).toContain('key: must be one of "net.ipv4.ip_forward"');
    await expect(driver.read('kernel.panic' as SysctlKey)).rejects.toThrow('sysctl kernel.panic is not allow-listed');
  });

  it('reports a missing key as null when observing, and a failed write', async () => {
    rmSync(join(root, 'net'), { recursive: true });
    const driver = createSysctlDriver({ root });
    expect(await driver.observe()).toEqual({ 'net.ipv4.ip_forward': null });
    const result = await driver.write({ kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' });
    expect(result.ok).toBe(false);
    expect(result.stderr).toMatch(/^cannot set net\.ipv4\.ip_forward: ENOENT/);
  });

  it('reads the running kernel (read only)', async () => {
    expect(['0', '1']).toContain(await createSysctlDriver().read('net.ipv4.ip_forward'));
  });
});
