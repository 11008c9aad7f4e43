// Kernel parameters through /proc/sys, for allow-listed keys only.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SYSCTL_KEYS, type CommandResult, type SysctlKey, type SysctlSet } from '@crossdock/shared';
import { firstInvalid, resultWithoutProcess } from './run.ts';

export interface SysctlDriver {
  /** Every allow-listed key; null where the kernel has no such file. */
  observe(): Promise<Record<SysctlKey, string | null>>;
  /** Writes, then reads back to confirm the kernel took the value. */
  write(command: SysctlSet): Promise<CommandResult>;
}

export interface SysctlDriverOptions {
  /** where the sysctl tree is: /proc/sys, or a temporary directory in tests */
  root?: string;
}

export function createSysctlDriver(options: SysctlDriverOptions = {}): SysctlDriver {
  const root = options.root ?? '/proc/sys';
  const pathOf = (key: SysctlKey) => {
    if (!SYSCTL_KEYS.includes(key)) throw new Error(`sysctl ${key} is not allow-listed; crossdock sets only ${SYSCTL_KEYS.join(', ')}`);
    return join(root, ...key.split('.'));
  };
  const read = async (key: SysctlKey) => (await readFile(pathOf(key), 'utf8')).trim();

  return {
    async observe() {
      const entries = await Promise.all(SYSCTL_KEYS.map(async (key) => [key, await read(key).catch(() => null)] as const));
      return Object.fromEntries(entries) as Record<SysctlKey, string | null>;
    },

    async write(command) {
      const started = performance.now();
      const invalid = firstInvalid([command]);
      if (invalid) return resultWithoutProcess(false, '', `${invalid}\n`, started);
      const { key, value } = command;
      try {
        await writeFile(pathOf(key), `${value}\n`);
        const now = await read(key);
        if (now !== value) return resultWithoutProcess(false, '', `wrote ${value} to ${key} but it reads back ${now}\n`, started);
        return resultWithoutProcess(true, `${key} = ${value}\n`, '', started);
      } catch (error) {
        return resultWithoutProcess(false, '', `cannot set ${key}: ${(error as Error).message}\n`, started);
      }
    },
  };
}
