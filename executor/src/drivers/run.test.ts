// The process runner (plain spawn) and the validated-command seal the drivers trust.
import { describe, expect, it } from 'vitest';
import type { Command, RouteReplace } from '@crossdock/shared';
import { createRunner, firstInvalid, sealValidated } from './run.ts';

describe('createRunner', () => {
  const run = createRunner();

  it('feeds input, keeps output as printed (final newline included) and the exit code', async () => {
    const result = await run(['sh', '-c', 'cat; echo oops >&2; exit 3'], { input: 'a\nb\n' });
    expect(result).toMatchObject({ ok: false, exitCode: 3, stdout: 'a\nb\n', stderr: 'oops\n' });
    expect(await run(['true'])).toMatchObject({ ok: true, exitCode: 0, stdout: '', stderr: '' });
  });

  it('runs with untranslated messages', async () => {
    expect((await run(['sh', '-c', 'echo $LC_ALL'])).stdout).toBe('C\n');
  });

  it('a process that exits without reading its input is not an error', async () => {
    expect(await run(['true'], { input: 'x'.repeat(1 << 20) })).toMatchObject({ ok: true, exitCode: 0 });
  });

  it('says why when there is no exit code: a missing binary, a timeout', async () => {
    const missing = await run(['cdtest-no-such-binary']);
    expect(missing).toMatchObject({ ok: false, exitCode: null });
    expect(missing.stderr).toMatch(/^cannot run cdtest-no-such-binary: spawn cdtest-no-such-binary ENOENT\n$/);
    const slow = await run(['sleep', '5'], { timeoutMs: 50 });
    expect(slow).toMatchObject({ ok: false, exitCode: null, stderr: 'sleep 5 timed out after 50 ms and was killed\n' });
  });
});

describe('sealValidated', () => {
  it('lets drivers skip commands already validated, which can no longer change', () => {
    const route: RouteReplace = { kind: 'route.replace', dst: '10.2.0.0/24', via: '198.51.100.12', dev: 'eth0' };
    sealValidated([route]);
    expect(Object.isFrozen(route)).toBe(true);
    expect(() => Object.assign(route, { dst: 'not a cidr' })).toThrow(TypeError);
    expect(firstInvalid([route])).toBeNull();
  });

  it('freezes nested rules too; anything not sealed is still checked', () => {
    const chain = {
      kind: 'firewall.chain',
      table: 'filter',
      chain: 'CROSSDOCK-FORWARD',
      rules: [{ source: '10.1.0.0/24', target: 'ACCEPT' }],
    } as Command;
    sealValidated([chain]);
    expect(Object.isFrozen((chain as { rules: object[] }).rules[0])).toBe(true);
    expect(firstInvalid([{ ...chain, rules: [{ source: '10.1.0.5/24', target: 'ACCEPT' }] }])).toMatch(/host bits|10\.1\.0\.5/);
  });
});
