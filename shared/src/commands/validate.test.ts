import { describe, expect, it } from 'vitest';
import { validateCommand, validateCommands } from './validate.ts';

const route = { kind: 'route.replace', dst: '10.2.0.0/24', via: '198.51.100.12', dev: 'eth0' };
const rule = { source: '10.1.0.0/24', destination: '10.100.0.0/16', inInterface: 'eth0', outInterface: 'br-1', target: 'ACCEPT', comment: 'crossdock peer' };
const chain = { kind: 'firewall.chain', table: 'filter', chain: 'CROSSDOCK-FORWARD', rules: [rule] };
const natChain = {
  kind: 'firewall.chain',
  table: 'nat',
  chain: 'CROSSDOCK-POSTROUTING',
  rules: [{ source: '10.1.0.0/24', destination: '10.100.0.0/16', target: 'RETURN' }],
};
const jump = { kind: 'firewall.jump', table: 'filter', from: 'DOCKER-USER', to: 'CROSSDOCK-FORWARD', position: 1 };
const network = {
  kind: 'docker.network.create',
  name: 'crossdock',
  subnet: '10.1.0.0/24',
  gateway: '10.1.0.1',
  options: { 'com.docker.network.bridge.gateway_mode_ipv4': 'nat-unprotected' },
  labels: { 'io.crossdock.managed': 'true', 'io.crossdock.subnet': 'sub_1' },
};
const bip = { kind: 'docker.daemon.bip', bip: '10.1.0.1/24' };
const sysctl = { kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' };

const valid: [string, unknown][] = [
  ['route.replace', route],
  ['route.replace to a /32', { ...route, dst: '10.2.0.7/32' }],
  ['route.replace on a VLAN interface', { ...route, dev: 'eth0.100' }],
  ['route.replace on a 15-character interface', { ...route, dev: 'abcdefghijklmno' }],
  ['route.delete', { kind: 'route.delete', dst: '10.2.0.0/24' }],
  ['firewall.chain with every field', chain],
  ['firewall.chain with no rules', { ...chain, rules: [] }],
  ['firewall.chain with only a target', { ...chain, rules: [{ target: 'DROP' }] }],
  ['firewall.chain with an interface wildcard', { ...chain, rules: [{ inInterface: 'eth+', target: 'ACCEPT' }] }],
  ['firewall.chain with every comment character', { ...chain, rules: [{ target: 'RETURN', comment: 'Az09 ._:/-' }] }],
  ['nat firewall.chain', natChain],
  ['nat firewall.chain with outInterface', { ...natChain, rules: [{ outInterface: 'eth0', target: 'ACCEPT' }] }],
  ['firewall.chain with a 28-character name', { ...chain, chain: 'CROSSDOCK-ABCDEFGHIJKLMNOPQR' }],
  ['firewall.jump', jump],
  ['firewall.jump from FORWARD', { ...jump, from: 'FORWARD', position: 3 }],
  ['firewall.jump from POSTROUTING', { ...jump, table: 'nat', from: 'POSTROUTING', to: 'CROSSDOCK-POSTROUTING' }],
  ['docker.network.create', network],
  ['docker.network.create without labels or options', { ...network, options: {}, labels: {} }],
  ['docker.network.create with a 63-character name', { ...network, name: `a${'b'.repeat(62)}` }],
  ['docker.network.create with a /30', { ...network, subnet: '10.1.0.4/30', gateway: '10.1.0.6' }],
  ['docker.network.create with unicode text', { ...network, labels: { note: 'café – ok' } }],
  ['docker.network.remove', { kind: 'docker.network.remove', name: 'crossdock' }],
  ['docker.daemon.bip', bip],
  ['docker.daemon.bip last host', { ...bip, bip: '10.1.0.254/24' }],
  ['sysctl.set', sysctl],
  ['sysctl.set 0', { ...sysctl, value: '0' }],
];

describe('validateCommand accepts', () => {
  it.each(valid)('%s', (_name, raw) => {
    const result = validateCommand(raw);
    expect(result).toEqual({ ok: true, command: raw });
  });
});

const withRule = (over: Record<string, unknown>) => ({ ...chain, rules: [{ ...rule, ...over }] });

// [name, raw, a fragment the error must contain]
const invalid: [string, unknown, string][] = [
  ['a non-object', 'route.replace', 'must be an object'],
  ['null', null, 'must be an object'],
  ['an array', [route], 'must be an object'],
  ['no kind', { dst: '10.2.0.0/24' }, 'kind: undefined is not a command'],
  ['an unknown kind', { kind: 'shell.exec' }, 'kind: "shell.exec" is not a command; use one of route.replace'],
  ['an inherited kind', { kind: 'toString' }, 'kind: "toString" is not a command'],
  ['an unknown field', { ...route, metric: 5 }, 'route.replace metric: unknown field'],
  // route.replace
  ['dst missing', { ...route, dst: undefined }, 'route.replace dst: missing; give an IPv4 CIDR block such as 10.1.0.0/24'],
  ['dst with host bits', { ...route, dst: '10.2.0.5/24' }, 'dst: "10.2.0.5/24" has host bits set; the block containing it is 10.2.0.0/24'],
  ['dst without prefix', { ...route, dst: '10.2.0.0' }, 'dst: "10.2.0.0" is not a CIDR block'],
  ['dst with a bad prefix', { ...route, dst: '10.2.0.0/33' }, 'dst: prefix length "/33"'],
  ['dst with a bad address', { ...route, dst: '10.2.0.256/24' }, 'dst: "10.2.0.256" in "10.2.0.256/24" is not an IPv4 address'],
  ['dst the default route', { ...route, dst: '0.0.0.0/0' }, 'dst: "0.0.0.0/0" is the default route'],
  ['dst a number', { ...route, dst: 42 }, 'dst: expected string'],
  ['dst too long', { ...route, dst: '10.2.0.0/24'.repeat(6) }, 'dst: expected string length less or equal to 64'],
  ['via not an address', { ...route, via: 'gateway' }, 'via: "gateway" is not an IPv4 address'],
  ['via with leading zeros', { ...route, via: '198.51.100.012' }, 'via: "198.51.100.012" is not an IPv4 address'],
  ['via a CIDR', { ...route, via: '198.51.100.12/24' }, 'via: "198.51.100.12/24" is not an IPv4 address'],
  ['via loopback', { ...route, via: '127.0.0.1' }, 'via: "127.0.0.1" is not a unicast address'],
  ['via multicast', { ...route, via: '224.0.0.1' }, 'via: "224.0.0.1" is not a unicast address'],
  ['via 0.0.0.0', { ...route, via: '0.0.0.0' }, 'not a unicast address'],
  ['dev empty', { ...route, dev: '' }, 'dev: expected string length greater or equal to 1'],
  ['dev 16 characters', { ...route, dev: 'abcdefghijklmnop' }, 'dev: expected string length less or equal to 15'],
  ['dev "."', { ...route, dev: '.' }, 'dev: "." is not a valid interface name'],
  ['dev ".."', { ...route, dev: '..' }, 'dev: ".." is not a valid interface name'],
  ['dev with "/"', { ...route, dev: 'eth/0' }, 'dev: interface name "eth/0" contains "/"'],
  ['dev with ":"', { ...route, dev: 'eth0:1' }, 'dev: interface name "eth0:1" contains ":"'],
  ['dev with a space', { ...route, dev: 'eth 0' }, 'dev: interface name "eth 0" contains whitespace'],
  ['dev with a tab', { ...route, dev: 'eth\t0' }, 'contains whitespace'],
  ['dev with a newline', { ...route, dev: 'eth0\nroute' }, 'contains whitespace'],
  ['dev with a quote', { ...route, dev: 'eth"0' }, 'contains """'],
  ['dev with "#"', { ...route, dev: 'eth#0' }, 'contains "#"'],
  ['dev with a backslash', { ...route, dev: 'eth\\0' }, 'contains "\\"'],
  ['dev with non-ASCII', { ...route, dev: 'éth0' }, 'non-ASCII'],
  ['dev starting with "-"', { ...route, dev: '-eth0' }, 'starts with "-"'],
  ['dev starting with "!"', { ...route, dev: '!eth0' }, 'starts with "!"'],
  // route.delete
  ['route.delete with host bits', { kind: 'route.delete', dst: '10.2.0.1/24' }, 'route.delete dst: "10.2.0.1/24" has host bits set'],
  ['route.delete of the default route', { kind: 'route.delete', dst: '0.0.0.0/0' }, 'is the default route'],
  ['route.delete with via', { kind: 'route.delete', dst: '10.2.0.0/24', via: '198.51.100.1' }, 'via: unknown field'],
  // firewall.chain
  ['table unknown', { ...chain, table: 'mangle' }, 'firewall.chain table: must be one of "filter", "nat"; got "mangle"'],
  ['chain not ours', { ...chain, chain: 'FORWARD' }, "chain: expected string to match '^CROSSDOCK-[A-Z0-9-]{1,20}$'"],
  ['chain lower case', { ...chain, chain: 'CROSSDOCK-forward' }, 'chain: expected string to match'],
  ['chain too long for the pattern', { ...chain, chain: `CROSSDOCK-${'A'.repeat(21)}` }, 'chain: expected string to match'],
  [
    'chain too long for iptables',
    { ...chain, chain: `CROSSDOCK-${'A'.repeat(19)}` },
    'chain: chain name "CROSSDOCK-AAAAAAAAAAAAAAAAAAA" is 29 characters; iptables allows at most 28',
  ],
  ['rules not an array', { ...chain, rules: rule }, 'rules: expected array'],
  ['rule target unknown', withRule({ target: 'MASQUERADE' }), 'rules[0].target: must be one of "ACCEPT", "RETURN", "DROP"; got "MASQUERADE"'],
  ['rule target missing', withRule({ target: undefined }), 'rules[0].target: missing; use one of "ACCEPT", "RETURN", "DROP"'],
  ['rule source with host bits', withRule({ source: '10.1.0.1/24' }), 'rules[0].source: "10.1.0.1/24" has host bits set'],
  ['rule source an address', withRule({ source: '10.1.0.1' }), 'rules[0].source: "10.1.0.1" is not a CIDR block'],
  ['rule source /0', withRule({ source: '0.0.0.0/0' }), 'rules[0].source: "0.0.0.0/0" matches every address; leave source out'],
  ['rule destination with host bits', withRule({ destination: '10.100.0.1/16' }), 'rules[0].destination: "10.100.0.1/16" has host bits set'],
  ['rule destination /0', withRule({ destination: '0.0.0.0/0' }), 'rules[0].destination: "0.0.0.0/0" matches every address'],
  ['rule inInterface with a space', withRule({ inInterface: 'eth 0' }), 'rules[0].inInterface: interface name "eth 0" contains whitespace'],
  ['rule inInterface too long', withRule({ inInterface: 'x'.repeat(16) }), 'rules[0].inInterface: expected string length less or equal to 15'],
  ['rule outInterface with a quote', withRule({ outInterface: "br'0" }), `rules[0].outInterface: interface name "br'0" contains "'"`],
  ['rule outInterface empty', withRule({ outInterface: '' }), 'rules[0].outInterface: expected string length greater or equal to 1'],
  ['rule comment with ";"', withRule({ comment: 'a;b' }), "rules[0].comment: expected string to match '^[A-Za-z0-9 ._:/-]{1,64}$'"],
  ['rule comment with a quote', withRule({ comment: 'say "hi"' }), 'rules[0].comment: expected string to match'],
  ['rule comment empty', withRule({ comment: '' }), 'rules[0].comment: expected string to match'],
  ['rule comment too long', withRule({ comment: 'x'.repeat(65) }), 'rules[0].comment: expected string to match'],
  ['rule comment with a newline', withRule({ comment: 'a\nCOMMIT' }), 'rules[0].comment: expected string to match'],
  ['rule with a free-text match', withRule({ match: '-m state --state NEW' }), 'rules[0].match: unknown field'],
  ['second rule bad', { ...chain, rules: [rule, { ...rule, source: 'x' }] }, 'rules[1].source:'],
  ['nat rule DROP', { ...natChain, rules: [{ target: 'DROP' }] }, 'rules[0].target: iptables forbids DROP in the nat table'],
  ['nat rule inInterface', { ...natChain, rules: [{ inInterface: 'eth0', target: 'RETURN' }] }, 'rules[0].inInterface: not allowed in the nat table'],
  // firewall.jump
  ['jump from a foreign chain', { ...jump, from: 'OUTPUT' }, 'from: must be one of "DOCKER-USER", "FORWARD", "POSTROUTING", "INPUT"; got "OUTPUT"'],
  ['jump from DOCKER-USER in nat', { ...jump, table: 'nat' }, 'firewall.jump from: chain DOCKER-USER is in table filter, not nat; use table filter'],
  ['jump from POSTROUTING in filter', { ...jump, from: 'POSTROUTING' }, 'from: chain POSTROUTING is in table nat, not filter; use table nat'],
  ['jump to a foreign chain', { ...jump, to: 'ACCEPT' }, 'to: expected string to match'],
  ['jump to a long chain', { ...jump, to: `CROSSDOCK-${'B'.repeat(20)}` }, 'to: chain name'],
  ['jump position 0', { ...jump, position: 0 }, 'position: expected integer to be greater or equal to 1'],
  ['jump position fractional', { ...jump, position: 1.5 }, 'position: expected integer'],
  ['jump position a string', { ...jump, position: '1' }, 'position: expected integer'],
  ['jump table missing', { ...jump, table: undefined }, 'firewall.jump table: missing; use one of "filter", "nat"'],
  // docker.network.create
  ['network name with a space', { ...network, name: 'cross dock' }, "name: expected string to match '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$'"],
  ['network name starting with "-"', { ...network, name: '-crossdock' }, 'name: expected string to match'],
  ['network name 64 characters', { ...network, name: 'a'.repeat(64) }, 'name: expected string to match'],
  ['network name predefined', { ...network, name: 'bridge' }, `name: "bridge" is one of Docker's predefined networks`],
  ['network subnet with host bits', { ...network, subnet: '10.1.0.1/24' }, 'subnet: "10.1.0.1/24" has host bits set; the block containing it is 10.1.0.0/24'],
  [
    'network subnet /31',
    { ...network, subnet: '10.1.0.0/31', gateway: '10.1.0.1' },
    'subnet: prefix length /31 of "10.1.0.0/31" is out of range for a bridge network; use /8 to /30',
  ],
  ['network subnet /4', { ...network, subnet: '0.0.0.0/4', gateway: '0.0.0.1' }, 'use /8 to /30'],
  [
    'network gateway the network address',
    { ...network, gateway: '10.1.0.0' },
    'gateway: gateway 10.1.0.0 is the network address of 10.1.0.0/24; use a host address such as 10.1.0.1',
  ],
  [
    'network gateway the broadcast address',
    { ...network, gateway: '10.1.0.255' },
    'gateway: gateway 10.1.0.255 is the broadcast address of 10.1.0.0/24; use a host address such as 10.1.0.1',
  ],
  ['network gateway outside', { ...network, gateway: '10.2.0.1' }, 'gateway: gateway 10.2.0.1 is outside 10.1.0.0/24; use a host address such as 10.1.0.1'],
  ['network gateway not an address', { ...network, gateway: 'x' }, 'gateway: "x" is not an IPv4 address'],
  ['network option key upper case', { ...network, options: { Mtu: '1500' } }, 'options.Mtu: key "Mtu" must match ^[a-z0-9][a-z0-9._-]*$'],
  ['network option key with "="', { ...network, options: { 'a=b': 'c' } }, 'key "a=b" must match'],
  ['network option value with a newline', { ...network, options: { mtu: '1500\n' } }, 'options.mtu: expected string to match'],
  ['network option value with DEL', { ...network, options: { mtu: '15\u007f' } }, 'options.mtu: expected string to match'],
  ['network option value too long', { ...network, options: { mtu: 'x'.repeat(257) } }, 'options.mtu: expected string length less or equal to 256'],
  ['network option value a number', { ...network, options: { mtu: 1500 } }, 'options.mtu: expected string'],
  [
    'network option key too long',
    { ...network, options: { ['k'.repeat(257)]: 'v' } },
    'options: key "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk..." is 257 characters; use at most 256',
  ],
  ['network label key too long', { ...network, labels: { ['k'.repeat(257)]: 'v' } }, 'labels: key'],
  ['network options missing', { ...network, options: undefined }, 'docker.network.create options: missing; give keys in lower case'],
  [
    'network too many labels',
    { ...network, labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) },
    'labels: expected object to have no more than 64 properties',
  ],
  ['network label value with a tab', { ...network, labels: { note: 'a\tb' } }, 'labels.note: expected string to match'],
  ['network managed label false', { ...network, labels: { 'io.crossdock.managed': 'false' } }, 'labels["io.crossdock.managed"]: must be "true"'],
  // docker.network.remove
  ['remove a bad name', { kind: 'docker.network.remove', name: 'a/b' }, 'docker.network.remove name: expected string to match'],
  ['remove a predefined network', { kind: 'docker.network.remove', name: 'host' }, `"host" is one of Docker's predefined networks`],
  // docker.daemon.bip
  [
    'bip the network address',
    { ...bip, bip: '10.1.0.0/24' },
    'bip: 10.1.0.0 is the network address of 10.1.0.0/24 (dockerd would not start); use a host address such as 10.1.0.1/24',
  ],
  ['bip the broadcast address', { ...bip, bip: '10.1.0.255/24' }, 'bip: 10.1.0.255 is the broadcast address of 10.1.0.0/24'],
  ['bip without prefix', { ...bip, bip: '10.1.0.1' }, 'bip: "10.1.0.1" is not address/prefix'],
  ['bip with a bad address', { ...bip, bip: '10.1.0.300/24' }, 'is not address/prefix'],
  ['bip /31', { ...bip, bip: '10.1.0.1/31' }, 'bip: prefix length /31 of "10.1.0.1/31" is out of range for a bridge; use /8 to /30'],
  ['bip /0', { ...bip, bip: '10.1.0.1/0' }, 'out of range'],
  ['bip a number', { ...bip, bip: 24 }, 'bip: expected string'],
  // sysctl.set
  ['sysctl key not allowed', { ...sysctl, key: 'kernel.panic' }, 'sysctl.set key: must be one of "net.ipv4.ip_forward"; got "kernel.panic"'],
  ['sysctl key path traversal', { ...sysctl, key: '../../etc/passwd' }, 'key: must be one of'],
  ['sysctl value 2', { ...sysctl, value: '2' }, 'value: must be one of "0", "1"; got "2"'],
  ['sysctl value a number', { ...sysctl, value: 1 }, 'value: must be one of "0", "1"; got 1'],
];

describe('validateCommand rejects', () => {
  it.each(invalid)('%s', (_name, raw, fragment) => {
    const result = validateCommand(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toContain(fragment);
  });
});

describe('validateCommands', () => {
  it('returns every command when all are valid', () => {
    expect(validateCommands([route, chain, sysctl])).toEqual({ ok: true, commands: [route, chain, sysctl] });
  });

  it('rejects the whole list and names the first bad command', () => {
    const result = validateCommands([route, { ...route, dst: 'nope' }, { kind: 'nope' }]);
    expect(result).toMatchObject({ ok: false, index: 1 });
    if (!result.ok) expect(result.error).toMatch(/^command 1: route\.replace dst: "nope" is not a CIDR block/);
  });

  it('accepts an empty list', () => {
    expect(validateCommands([])).toEqual({ ok: true, commands: [] });
  });
});
