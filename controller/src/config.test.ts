import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseAdvertiseUrl, parseDefaultPool } from './config.ts';

describe('parseDefaultPool', () => {
  it.each([
    ['10.100.0.0/16', { network: 0x0a640000, prefixLength: 16 }],
    ['172.16.0.0/12', { network: 0xac100000, prefixLength: 12 }],
    ['none', null],
  ])('%s', (text, pool) => expect(parseDefaultPool(text)).toEqual(pool));

  it.each([
    ['10.100.0.5/16', /host bits.*use 10\.100\.0\.0\/16/],
    ['banana', /not a CIDR block/],
    ['10.100.0.0/25', /smaller than one \/24/],
    ['127.0.0.0/16', /127\.0\.0\.0\/16 overlaps 127\.0\.0\.0\/8, the loopback range.*private range/],
    ['224.0.0.0/4', /the multicast range/],
    ['169.254.0.0/16', /the link-local range/],
    ['0.0.0.0/0', /"this network" range/],
    ['240.0.0.0/8', /reserved range/],
  ])('refuses %s', (text, message) => {
    expect(() => parseDefaultPool(text)).toThrow(ConfigError);
    expect(() => parseDefaultPool(text)).toThrow(message);
  });
});

describe('advertise URL (the join line names it)', () => {
  it('takes a flag over the environment, drops a trailing slash, and is unset by default', () => {
    expect(loadConfig([], {}).valueOf()).toMatchObject({ advertiseUrl: undefined });
    expect(loadConfig([], { CROSSDOCK_ADVERTISE_URL: 'https://192.168.32.5:7800/' })).toMatchObject({ advertiseUrl: 'https://192.168.32.5:7800' });
    expect(loadConfig(['--advertise-url', 'https://crossdock.example.org/api'], { CROSSDOCK_ADVERTISE_URL: 'https://a:1' })).toMatchObject({
      advertiseUrl: 'https://crossdock.example.org/api',
    });
  });

  it('refuses a plain http:// advertise URL while TLS is on, and takes one behind a proxy (TLS off)', () => {
    expect(() => loadConfig([], { CROSSDOCK_ADVERTISE_URL: 'http://192.168.32.5:7800' })).toThrow(/use https:\/\/192\.168\.32\.5:7800, or --tls off/);
    expect(loadConfig(['--tls', 'off'], { CROSSDOCK_ADVERTISE_URL: 'http://192.168.32.5:7800' })).toMatchObject({ tls: { mode: 'off' } });
  });

  it.each([
    ['192.168.32.5:7800', /is not a URL.*http:\/\/192\.168\.32\.5:7800/],
    ['ftp://192.168.32.5', /must start with http:\/\/ or https:\/\/, not ftp:/],
    ['http://a:7800/?x=1', /query, fragment or credentials/],
    ['http://user:pw@a:7800', /query, fragment or credentials/],
  ])('refuses %s', (text, message) => {
    expect(() => parseAdvertiseUrl(text)).toThrow(ConfigError);
    expect(() => parseAdvertiseUrl(text)).toThrow(message);
  });
});

describe('TLS settings', () => {
  it('is on by default with generated certificates, and takes extra names from flags and the environment', () => {
    expect(loadConfig([], {})).toMatchObject({ tls: { mode: 'generated', sans: [] } });
    expect(loadConfig(['--tls-san', 'ctl.example.net,192.168.32.5', '--tls-san', '[2001:db8::5]'], {})).toMatchObject({
      tls: { mode: 'generated', sans: ['ctl.example.net', '192.168.32.5', '2001:db8::5'] },
    });
    expect(loadConfig([], { CROSSDOCK_TLS_SAN: 'a.example,b.example' })).toMatchObject({ tls: { sans: ['a.example', 'b.example'] } });
  });

  it('serves an operator certificate given with its key, as absolute paths', () => {
    expect(loadConfig([], { CROSSDOCK_TLS_CERT: 'certs/c.pem', CROSSDOCK_TLS_KEY: '/k.pem' })).toMatchObject({
      tls: { mode: 'operator', certFile: path.resolve('certs/c.pem'), keyFile: '/k.pem' },
    });
  });

  it('is off with off (or false), and then takes no certificate', () => {
    expect(loadConfig([], { CROSSDOCK_TLS: 'off' })).toMatchObject({ tls: { mode: 'off' } });
    expect(loadConfig(['--tls', 'false'], {})).toMatchObject({ tls: { mode: 'off' } });
  });

  it.each([
    [['--tls', 'maybe'], /TLS setting "maybe" is unknown; use on \(the default\) or off/],
    [['--tls-cert', '/c.pem'], /needs its key.*--tls-cert and --tls-key/],
    [['--tls-key', '/k.pem'], /needs its key.*--tls-cert and --tls-key/],
    [['--tls', 'off', '--tls-san', 'x.example'], /TLS is off, but a TLS certificate, key or SAN was given/],
    [['--tls-cert', '/c.pem', '--tls-key', '/k.pem', '--tls-san', 'x'], /drop --tls-san/],
    [['--tls-san', 'not a name'], /neither an IP address nor a DNS name/],
  ])('refuses %j', (argv, message) => {
    expect(() => loadConfig(argv, {})).toThrow(ConfigError);
    expect(() => loadConfig(argv, {})).toThrow(message);
  });
});

describe('max syncing (reconnect storms)', () => {
  it('defaults to 200, takes a flag over the environment, and 0 for no limit', () => {
    expect(loadConfig([], {})).toMatchObject({ maxSyncing: 200 });
    expect(loadConfig([], { CROSSDOCK_MAX_SYNCING: '0' })).toMatchObject({ maxSyncing: 0 });
    expect(loadConfig(['--max-syncing', '50'], { CROSSDOCK_MAX_SYNCING: '0' })).toMatchObject({ maxSyncing: 50 });
  });

  it('refuses what is not a whole number, saying what would be right', () => {
    for (const bad of ['-1', 'many', '1.5', '']) {
      expect(() => loadConfig([`--max-syncing=${bad}`], {})).toThrow(
        /max syncing ".*" is not a whole number; use how many executors may sync at once, such as 200, or 0 for no limit/,
      );
    }
  });
});

describe('database (SQLite file or PostgreSQL URL)', () => {
  it('defaults to the SQLite file, takes a PostgreSQL URL with a pool size, and a flag over the environment', () => {
    const base = loadConfig([], {});
    expect(base !== 'help' && base.database).toEqual({ kind: 'sqlite', file: expect.stringMatching(/data\/crossdock\.db$/) });
    const url = 'postgresql://crossdock:s%40cret@db.example.net:5432/crossdock?sslmode=require';
    expect(loadConfig([], { CROSSDOCK_DB: url })).toMatchObject({ database: { kind: 'postgresql', url, poolSize: 10 } });
    expect(loadConfig(['--db-pool-size', '3'], { CROSSDOCK_DB: url, CROSSDOCK_DB_POOL_SIZE: '20' })).toMatchObject({ database: { poolSize: 3 } });
    expect(loadConfig(['--db', 'file:/var/lib/crossdock/c.db'], { CROSSDOCK_DB: url })).toMatchObject({
      database: { kind: 'sqlite', file: '/var/lib/crossdock/c.db' },
    });
  });

  it('refuses what is neither, a URL without a database, a bad pool size, or a pool size for SQLite, never echoing a password', () => {
    const refusal = (argv: string[], env: Record<string, string>) => {
      try {
        loadConfig(argv, env);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refusal([], { CROSSDOCK_DB: 'mysql://root:hunter2@db/x' })).toMatch(/neither a SQLite file nor a PostgreSQL URL; use file:.* or postgresql:\/\//);
    expect(refusal([], { CROSSDOCK_DB: 'mysql://root:hunter2@db/x' })).not.toContain('hunter2');
    expect(refusal([], { CROSSDOCK_DB: 'postgresql://u:hunter2@db.example.net:5432' })).toMatch(/names no host or no database/);
    expect(refusal([], { CROSSDOCK_DB: 'postgresql://u:hunter2@db.example.net:5432' })).not.toContain('hunter2');
    for (const size of ['0', '1001', '2.5', 'ten']) {
      expect(refusal(['--db-pool-size', size], { CROSSDOCK_DB: 'postgresql://db/crossdock' })).toMatch(/pool size ".*" is not a whole number from 1 to 1000/);
    }
    expect(refusal([], { CROSSDOCK_DB_POOL_SIZE: '5' })).toMatch(/applies only to PostgreSQL/);
  });
});
