import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { joinLine, shellLine } from './shell.ts';

/** What sh makes of a line: its words. */
function wordsOf(line: string): string[] {
  return execFileSync('sh', ['-c', `for w in ${line}; do printf '%s\\0' "$w"; done`], { encoding: 'utf8' })
    .split('\0')
    .slice(0, -1);
}

describe('join line', () => {
  it('is the install command with the controller URL and the token', () => {
    expect(joinLine('http://192.168.32.5:7800', 'cdh_abc-_9')).toBe(
      'node crossdock-executor.mjs install --controller http://192.168.32.5:7800 --token cdh_abc-_9',
    );
  });

  it('pins the CA when the controller speaks TLS', () => {
    expect(joinLine('https://192.168.32.5:7800', 'cdh_abc', `sha256:${'ab'.repeat(32)}`)).toBe(
      `node crossdock-executor.mjs install --controller https://192.168.32.5:7800 --token cdh_abc --ca-fingerprint sha256:${'ab'.repeat(32)}`,
    );
  });

  it('gives sh back every word as it was, whatever it holds', () => {
    const words = ['node', "it's", 'a b', '$HOME', '`id`', '*', '', 'x;rm -rf /', 'new\nline'];
    expect(wordsOf(shellLine(words))).toEqual(words);
    expect(wordsOf(joinLine('http://[2001:db8::1]:7800/a b', "t'k"))).toEqual([
      'node',
      'crossdock-executor.mjs',
      'install',
      '--controller',
      'http://[2001:db8::1]:7800/a b',
      '--token',
      "t'k",
    ]);
  });
});
