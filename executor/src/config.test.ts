// Executor settings: flags over environment, defaults, and every error message.
import { beforeEach, describe, expect, it, vi } from 'vitest';

// Token files come from an in-memory table: no file is read.
const files = vi.hoisted(() => new Map<string, string>());
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return {
    ...actual,
    readFileSync: (path: string) => {
      const text = files.get(path);
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
      return text;
    },
  };
});

const { ConfigError, DEFAULT_ENGINE_RESTART_COMMAND, loadConfig } = await import('./config.ts');

const CONTROLLER = 'http://10.0.0.5:7800';
const BASE = ['--controller', CONTROLLER, '--token', 'tok'];

beforeEach(() => files.clear());

function config(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const loaded = loadConfig(argv, env);
  if (loaded === 'help') throw new Error('unexpected help');
  return loaded;
}

function error(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfig(argv, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('loadConfig did not throw');
}

describe('loadConfig', () => {
  it('has defaults for everything but the controller and the token', () => {
    expect(loadConfig(BASE, {})).toStrictEqual({
      controllerUrls: [CONTROLLER],
      token: 'tok',
      dockerHost: 'unix:///var/run/docker.sock',
      transport: 'auto',
      reconcileIntervalMs: undefined,
      daemonJsonPath: '/etc/docker/daemon.json',
      engineRestartCommand: null,
      ipamSocket: '/run/docker/plugins/crossdock.sock',
      ipamStateFile: '/var/lib/crossdock/ipam.json',
      caFingerprint: undefined,
      caFile: undefined,
    });
  });

  it('reads everything from the environment', () => {
    expect(
      loadConfig([], {
        CROSSDOCK_CONTROLLER: 'https://ctl.example:7800/',
        CROSSDOCK_TOKEN: 'env-token',
        DOCKER_HOST: 'tcp://127.0.0.1:2375',
        CROSSDOCK_TRANSPORT: 'polling',
        CROSSDOCK_RECONCILE_INTERVAL_MS: '5000',
        CROSSDOCK_DAEMON_JSON: '/srv/docker/daemon.json',
        CROSSDOCK_ALLOW_ENGINE_RESTART: 'true',
        CROSSDOCK_ENGINE_RESTART_COMMAND: '["rc-service","docker","restart"]',
        CROSSDOCK_IPAM_SOCKET: 'off',
        CROSSDOCK_IPAM_STATE: '/srv/crossdock/ipam.json',
        CROSSDOCK_CA_FINGERPRINT: `sha256:${'a'.repeat(64)}`,
        CROSSDOCK_CA_FILE: '/etc/crossdock/ca.pem',
      }),
    ).toStrictEqual({
      controllerUrls: ['https://ctl.example:7800'],
      token: 'env-token',
      dockerHost: 'tcp://127.0.0.1:2375',
      transport: 'polling',
      reconcileIntervalMs: 5000,
      daemonJsonPath: '/srv/docker/daemon.json',
      engineRestartCommand: ['rc-service', 'docker', 'restart'],
      ipamSocket: null,
      ipamStateFile: '/srv/crossdock/ipam.json',
      caFingerprint: `sha256:${'a'.repeat(64)}`,
      caFile: '/etc/crossdock/ca.pem',
    });
  });

  it('takes flags over the environment', () => {
    const env = {
      CROSSDOCK_CONTROLLER: 'http://env:7800',
      CROSSDOCK_TOKEN: 'env-token',
      DOCKER_HOST: 'unix:///env.sock',
      CROSSDOCK_TRANSPORT: 'polling',
      CROSSDOCK_RECONCILE_INTERVAL_MS: '5000',
      CROSSDOCK_DAEMON_JSON: '/env/daemon.json',
      CROSSDOCK_ENGINE_RESTART_COMMAND: '["env"]',
      CROSSDOCK_IPAM_SOCKET: '/env/crossdock.sock',
      CROSSDOCK_IPAM_STATE: '/env/ipam.json',
    };
    const argv = [
      '--controller',
      'http://flag:7800',
      '--token',
      'flag-token',
      '--docker-host',
      'unix:///flag.sock',
      '--transport',
      'websocket',
      '--reconcile-interval-ms',
      '250',
      '--daemon-json',
      '/flag/daemon.json',
      '--allow-engine-restart',
      '--engine-restart-command',
      '["flag","restart"]',
      '--ipam-socket',
      '/flag/plugins/crossdock.sock',
      '--ipam-state',
      '/flag/ipam.json',
    ];
    expect(loadConfig(argv, env)).toStrictEqual({
      controllerUrls: ['http://flag:7800'],
      token: 'flag-token',
      dockerHost: 'unix:///flag.sock',
      transport: 'websocket',
      reconcileIntervalMs: 250,
      daemonJsonPath: '/flag/daemon.json',
      engineRestartCommand: ['flag', 'restart'],
      ipamSocket: '/flag/plugins/crossdock.sock',
      ipamStateFile: '/flag/ipam.json',
      caFingerprint: undefined,
      caFile: undefined,
    });
  });

  it('pins a CA by fingerprint or file, only for an https:// controller', () => {
    const pin = `sha256:${'ab'.repeat(32)}`;
    expect(config(['--controller', 'https://c:7800', '--token', 't', '--ca-fingerprint', pin], {}).caFingerprint).toBe(pin);
    expect(() => config(['--controller', 'https://c:7800', '--token', 't', '--ca-fingerprint', 'sha1:abc'], {})).toThrow(/not sha256:<64 hex digits>/);
    expect(() => config(['--controller', 'http://c:7800', '--token', 't', '--ca-fingerprint', pin], {})).toThrow(/plain http:\/\/, but a CA is pinned/);
    expect(() => config(['--controller', 'http://c:7800', '--token', 't'], { CROSSDOCK_CA_FILE: '/x.pem' })).toThrow(/use https:\/\//);
  });

  it('keeps a path in the controller URL, without the trailing slash', () => {
    expect(config(['--controller', 'https://proxy.example/crossdock/', '--token', 't'], {}).controllerUrls).toStrictEqual(['https://proxy.example/crossdock']);
  });

  it('takes a comma-separated list of controllers, in order, blanks and repeats dropped', () => {
    expect(config(['--controller', ' http://a:7800/, http://b:7800,,http://a:7800', '--token', 't']).controllerUrls).toStrictEqual([
      'http://a:7800',
      'http://b:7800',
    ]);
    expect(config(['--token', 't'], { CROSSDOCK_CONTROLLER: 'http://a:7800,https://b.example' }).controllerUrls).toStrictEqual([
      'http://a:7800',
      'https://b.example',
    ]);
  });

  it('names the bad entry of a list', () => {
    expect(error(['--controller', 'http://a:7800,10.0.0.6:7800x', '--token', 't'])).toBe(
      'controller "10.0.0.6:7800x" is not a URL; use http://<controller address>:7800 (several, comma-separated)',
    );
    expect(error(['--controller', 'http://a:7800,ws://b:7800', '--token', 't'])).toBe(
      'controller URL must start with http:// or https://, not ws: (in "ws://b:7800")',
    );
    expect(error(['--controller', ' , ', '--token', 't'])).toMatch(/^no controller given/);
  });

  it.each([['--help'], ['-h']])('answers %s with help, even without other settings', (flag) => {
    expect(loadConfig([flag], {})).toBe('help');
  });

  it('allows engine restarts with the default command, only when told', () => {
    expect(config([...BASE, '--allow-engine-restart'], {}).engineRestartCommand).toStrictEqual(['systemctl', 'restart', 'docker']);
    expect(DEFAULT_ENGINE_RESTART_COMMAND).toStrictEqual(['systemctl', 'restart', 'docker']);
    expect(config(BASE, { CROSSDOCK_ALLOW_ENGINE_RESTART: 'false' }).engineRestartCommand).toBeNull();
  });
});

describe('loadConfig: token file', () => {
  it('reads the token from a file, trimmed', () => {
    files.set('/etc/crossdock/token', '  s3cret\n');
    expect(config(['--controller', CONTROLLER, '--token-file', '/etc/crossdock/token'], {}).token).toBe('s3cret');
    expect(config(['--controller', CONTROLLER], { CROSSDOCK_TOKEN_FILE: '/etc/crossdock/token' }).token).toBe('s3cret');
  });

  it('prefers --token to a token file, and a --token-file flag to CROSSDOCK_TOKEN', () => {
    files.set('/etc/crossdock/token', 'from-file\n');
    expect(config([...BASE, '--token-file', '/etc/crossdock/token'], {}).token).toBe('tok');
    expect(config(['--controller', CONTROLLER, '--token-file', '/etc/crossdock/token'], { CROSSDOCK_TOKEN: 'from-env' }).token).toBe('from-file');
    // both in the environment: the token itself wins
    expect(config(['--controller', CONTROLLER], { CROSSDOCK_TOKEN: 'from-env', CROSSDOCK_TOKEN_FILE: '/etc/crossdock/token' }).token).toBe('from-env');
  });

  it('says which token file it could not read, and why', () => {
    expect(error(['--controller', CONTROLLER, '--token-file', '/nope/token'])).toBe('cannot read the token file /nope/token: ENOENT');
  });

  it('treats an empty token file as no token', () => {
    files.set('/etc/crossdock/token', '\n');
    expect(error(['--controller', CONTROLLER, '--token-file', '/etc/crossdock/token'])).toMatch(/^no host token given/);
  });
});

describe('loadConfig: errors', () => {
  it.each([
    [
      'no controller',
      ['--token', 't'],
      {},
      'no controller given; pass --controller http://<controller>:7800 (several, comma-separated) or set CROSSDOCK_CONTROLLER',
    ],
    [
      'an empty controller',
      ['--controller', '', '--token', 't'],
      {},
      'no controller given; pass --controller http://<controller>:7800 (several, comma-separated) or set CROSSDOCK_CONTROLLER',
    ],
    [
      'a controller that is not a URL',
      ['--controller', '10.0.0.5:7800x', '--token', 't'],
      {},
      'controller "10.0.0.5:7800x" is not a URL; use http://<controller address>:7800 (several, comma-separated)',
    ],
    [
      'a host name without scheme',
      ['--controller', 'controller', '--token', 't'],
      {},
      'controller "controller" is not a URL; use http://<controller address>:7800 (several, comma-separated)',
    ],
    [
      'a ws:// controller',
      ['--controller', 'ws://10.0.0.5:7800', '--token', 't'],
      {},
      'controller URL must start with http:// or https://, not ws: (in "ws://10.0.0.5:7800")',
    ],
    [
      'a file:// controller from the environment',
      ['--token', 't'],
      { CROSSDOCK_CONTROLLER: 'file:///tmp/x' },
      'controller URL must start with http:// or https://, not file: (in "file:///tmp/x")',
    ],
    ['no token', ['--controller', CONTROLLER], {}, 'no host token given; pass --token (the token POST /v1/hosts returned) or set CROSSDOCK_TOKEN'],
    [
      'an empty token',
      ['--controller', CONTROLLER],
      { CROSSDOCK_TOKEN: '' },
      'no host token given; pass --token (the token POST /v1/hosts returned) or set CROSSDOCK_TOKEN',
    ],
    ['a bad transport', [...BASE, '--transport', 'udp'], {}, 'transport "udp" is unknown; use auto, websocket or polling'],
    ['a bad transport from the environment', BASE, { CROSSDOCK_TRANSPORT: 'WebSocket' }, 'transport "WebSocket" is unknown; use auto, websocket or polling'],
    [
      'an interval that is not a number',
      [...BASE, '--reconcile-interval-ms', 'often'],
      {},
      'reconcile interval "often" must be a whole number of milliseconds, at least 100',
    ],
    [
      'an interval under 100 ms',
      [...BASE, '--reconcile-interval-ms', '99'],
      {},
      'reconcile interval "99" must be a whole number of milliseconds, at least 100',
    ],
    [
      'a fractional interval',
      BASE,
      { CROSSDOCK_RECONCILE_INTERVAL_MS: '150.5' },
      'reconcile interval "150.5" must be a whole number of milliseconds, at least 100',
    ],
    ['an empty interval', BASE, { CROSSDOCK_RECONCILE_INTERVAL_MS: '' }, 'reconcile interval "" must be a whole number of milliseconds, at least 100'],
    [
      'a restart command without --allow-engine-restart',
      [...BASE, '--engine-restart-command', '["systemctl","restart","docker"]'],
      {},
      '--engine-restart-command needs --allow-engine-restart as well',
    ],
    [
      'a restart command from the environment without permission',
      BASE,
      { CROSSDOCK_ENGINE_RESTART_COMMAND: '["true"]' },
      '--engine-restart-command needs --allow-engine-restart as well',
    ],
  ])('%s', (_name, argv, env, message) => {
    expect(error(argv, env)).toBe(message);
  });

  it.each([
    ['not JSON', '[systemctl'],
    ['a plain string', 'systemctl restart docker'],
    ['a JSON string', '"systemctl restart docker"'],
    ['an empty array', '[]'],
    ['an array with a number', '["kill", 1]'],
    ['an object', '{"argv":["true"]}'],
  ])('refuses a restart command that is %s', (_name, text) => {
    expect(error([...BASE, '--allow-engine-restart', '--engine-restart-command', text])).toBe(
      'engine restart command must be a JSON array of strings, such as ["systemctl","restart","docker"]',
    );
  });

  it('refuses an IPAM socket or state file that Docker or a restart could not find', () => {
    expect(error([...BASE, '--ipam-socket', 'crossdock.sock'])).toBe(
      'IPAM socket "crossdock.sock" must be an absolute path, such as /run/docker/plugins/crossdock.sock, or off',
    );
    expect(error([...BASE, '--ipam-socket', '/run/docker/plugins/crossdock'])).toMatch(/must end in \.sock \(Docker names the driver after the file/);
    expect(error([...BASE, '--ipam-state', 'ipam.json'])).toBe('IPAM state file "ipam.json" must be an absolute path, such as /var/lib/crossdock/ipam.json');
  });

  it('refuses unknown flags and missing values, pointing at --help', () => {
    expect(error([...BASE, '--controler', 'http://x'])).toMatch(/'--controler'.*; see --help$/);
    expect(error(['--controller'])).toMatch(/--controller.*; see --help$/);
    expect(error([...BASE, 'extra'])).toMatch(/extra.*; see --help$/);
  });
});
