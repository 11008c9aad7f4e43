// renderRule must read back from iptables-save byte for byte: restore every field combination
// in a throwaway namespace, save, compare.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderRestore, renderRule, type FirewallRule, type FirewallTable } from '@crossdock/shared';
import { missing } from './support/requirements.ts';

// Our own prefix inside cdtest-*: other suites may be using their namespaces right now.
const NS_PREFIX = 'cdtest-cmd-';
const ns = `${NS_PREFIX}${randomBytes(4).toString('hex')}`;
const inNs = (argv: string[], input?: string) =>
  execFileSync('nsenter', [`--net=/run/netns/${ns}`, ...argv], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });

function combinations(table: FirewallTable): FirewallRule[] {
  const rules: FirewallRule[] = [];
  const ifnames = [undefined, 'eth0', 'eth+', 'br-1a2b3c4d5e6f', 'a$b@c.1'];
  for (const source of [undefined, '10.1.0.0/24', '10.1.0.7/32', '128.0.0.0/1'])
    for (const destination of [undefined, '10.100.0.0/16'])
      for (const inInterface of table === 'nat' ? [undefined] : ifnames)
        for (const outInterface of ifnames)
          for (const comment of [undefined, 'abc', '123', 'a_b-C', 'crossdock peer', 'crossdock allowFrom', 'Az09 ._:/-', ' lead  two ', 'x'.repeat(64)])
            for (const target of table === 'nat' ? (['ACCEPT', 'RETURN'] as const) : (['ACCEPT', 'RETURN', 'DROP'] as const)) {
              const rule: FirewallRule = { target };
              if (source) rule.source = source;
              if (destination) rule.destination = destination;
              if (inInterface) rule.inInterface = inInterface;
              if (outInterface) rule.outInterface = outInterface;
              if (comment) rule.comment = comment;
              rules.push(rule);
            }
  return rules;
}

// Both backends print rules the same way; legacy runs only where its tools are installed.
const families = ['iptables', ...(existsSync('/usr/sbin/iptables-legacy-save') ? ['iptables-legacy'] : [])];

function savedChain(family: string, table: FirewallTable, chain: string): string[] {
  return inNs([`${family}-save`, '-t', table])
    .split('\n')
    .filter((line) => line.startsWith(`-A ${chain} `));
}

describe.skipIf(missing('root', 'netns', 'iptables'))('renderRule round-trips through iptables-save (needs root, netns)', () => {
  beforeAll(() => {
    for (const line of execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n')) {
      const old = line.split(' ')[0] ?? '';
      if (old.startsWith(NS_PREFIX)) execFileSync('ip', ['netns', 'delete', old]);
    }
    execFileSync('ip', ['netns', 'add', ns]);
  });
  afterAll(() => {
    execFileSync('ip', ['netns', 'delete', ns]);
  });

  const cases = families.flatMap((family) =>
    (['filter', 'nat'] as const).map((table) => [family, table, table === 'nat' ? 'CROSSDOCK-POSTROUTING' : 'CROSSDOCK-FORWARD'] as const),
  );
  it.each(cases)('%s: every field combination in %s', (family, table, chain) => {
    const rules = combinations(table);
    const expected = rules.map((rule) => renderRule(chain, rule));
    inNs([`${family}-restore`, '--noflush'], renderRestore(table, [{ chain, rules }]));
    expect(savedChain(family, table, chain)).toEqual(expected);
    // applying the same text again replaces the chain instead of appending to it
    inNs([`${family}-restore`, '--noflush'], renderRestore(table, [{ chain, rules }]));
    expect(savedChain(family, table, chain)).toEqual(expected);
  });
});
