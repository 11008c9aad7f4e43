// The service manager, for `install` and `uninstall` only: whether systemd runs this machine,
// and systemctl through the same argv-only runner as the other drivers.
import { existsSync } from 'node:fs';
import type { CommandResult } from '@crossdock/shared';
import { createRunner, type Runner } from './run.ts';

/** systemd's own test (sd_booted): this directory exists only while systemd is PID 1. */
export const SYSTEMD_RUNTIME_DIR = '/run/systemd/system';

export interface ServiceManager {
  /** Whether systemd runs this machine, so that units can be enabled and started. */
  readonly running: boolean;
  systemctl(args: readonly string[]): Promise<CommandResult>;
}

export function createServiceManager(options: { runner?: Runner; runtimeDir?: string } = {}): ServiceManager {
  const runner = options.runner ?? createRunner();
  return {
    running: existsSync(options.runtimeDir ?? SYSTEMD_RUNTIME_DIR),
    systemctl: (args) => runner(['systemctl', ...args]),
  };
}
