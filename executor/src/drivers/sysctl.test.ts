// The sysctl driver on this machine's kernel, read only. Writes, refusals and missing keys,
// next to the fake: test/drivers/sysctl.contract.test.ts.
import { describe, expect, it } from 'vitest';
import { createSysctlDriver } from './sysctl.ts';

describe('SysctlDriver on the running kernel', () => {
  it('observes ip_forward (read only)', async () => {
    expect(['0', '1']).toContain((await createSysctlDriver().observe())['net.ipv4.ip_forward']);
  });
});
