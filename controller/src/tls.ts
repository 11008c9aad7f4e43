// The controller's certificates (issue 17): a CA made on first start and a server certificate
// it signs, both saved beside the database; or an operator's own certificate. Node 20 has no
// X.509 generation in `crypto`, so certificates are built with @peculiar/x509 over WebCrypto
// (ECDSA P-256): no openssl binary on the controller's machine.
import 'reflect-metadata'; // @peculiar/x509's dependency injection (tsyringe) needs it loaded first
import { X509Certificate as NodeX509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { certificateFingerprint, pemCertificates } from '@crossdock/shared/trust';

x509.cryptoProvider.set(webcrypto as never);

export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca-key.pem';
export const SERVER_CERT_FILE = 'server.pem';
export const SERVER_KEY_FILE = 'server-key.pem';
const DAY_MS = 24 * 60 * 60 * 1000;
export const CA_VALIDITY_DAYS = 3650;
/** What browsers accept for a leaf; the controller renews it long before, at start or on request. */
export const SERVER_VALIDITY_DAYS = 397;
/** A server certificate closer than this to its end is renewed at start. */
export const SERVER_RENEW_BEFORE_DAYS = 30;
/** Clocks of hosts a little behind the controller's still accept a certificate made now. */
const NOT_BEFORE_SLACK_MS = 60 * 60 * 1000;
const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export class TlsError extends Error {}

export interface ServerCertificateInfo {
  subject: string;
  sans: string[];
  notBefore: string;
  notAfter: string;
  fingerprint: string;
}

/** What the HTTPS server serves and what the join line pins. */
export interface TlsMaterial {
  /** PEM: the server certificate followed by the chain up to (and including) the CA */
  cert: string;
  key: string;
  /** the certificate executors pin: the CA (or, for an operator chain, its last certificate) */
  caPem: string;
  /** sha256:<64 hex> of caPem's DER */
  caFingerprint: string;
  server: ServerCertificateInfo;
}

export type TlsSource = { kind: 'generated'; dir: string; sans: string[] } | { kind: 'operator'; certFile: string; keyFile: string };

/**
 * The names and addresses the server certificate must cover: the listen address (every local
 * address when it is a wildcard), the advertised URL's host, and the operator's extra names.
 */
export function subjectAltNames(listenHost: string, advertiseUrl: string | undefined, extra: string[]): string[] {
  const names = new Set<string>(['localhost', '127.0.0.1', '::1']);
  if (listenHost === '0.0.0.0' || listenHost === '::' || listenHost === '') {
    names.add(os.hostname());
    for (const list of Object.values(os.networkInterfaces())) {
      for (const entry of list ?? []) {
        if (entry.family === 'IPv4' || (entry.family === 'IPv6' && entry.scopeid === 0)) names.add(entry.address);
      }
    }
  } else {
    names.add(listenHost);
  }
  if (advertiseUrl) names.add(new URL(advertiseUrl).hostname.replace(/^\[|\]$/g, ''));
  for (const name of extra) names.add(name);
  return [...names];
}

/** One spelling per name, as node:crypto prints a certificate's (IPv6 in full, no leading zeros). */
export function canonicalSan(name: string): string {
  if (isIP(name) !== 6) return name.toLowerCase();
  const [head = '', tail] = name.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => g.replace(/^0+(?=.)/, '')).join(':');
}

function sanEntries(sans: string[]): x509.JsonGeneralName[] {
  return sans.map((name) => (isIP(name) ? { type: 'ip', value: name } : { type: 'dns', value: name }));
}

function writeSecret(file: string, text: string): void {
  const temporary = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600, flag: 'wx' });
  chmodSync(temporary, 0o600); // whatever the umask
  renameSync(temporary, file);
}

function writePublic(file: string, text: string): void {
  const temporary = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, text, { mode: 0o644, flag: 'wx' });
  renameSync(temporary, file);
}

async function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END PRIVATE KEY-----\n`.replace(/\n\n/g, '\n');
}

async function importKeyPem(pem: string): Promise<webcrypto.CryptoKey> {
  // Accepts PKCS#8 and SEC1 ("EC PRIVATE KEY") alike: node:crypto reads either.
  const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
  return (await webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, true, ['sign'])) as webcrypto.CryptoKey;
}

function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f; // a positive integer
  return bytes.toString('hex');
}

export async function createCertificateAuthority(dir: string): Promise<void> {
  const keys = await newKeys();
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=crossdock controller CA ${randomBytes(4).toString('hex')}`,
    notBefore: new Date(now - NOT_BEFORE_SLACK_MS),
    notAfter: new Date(now + CA_VALIDITY_DAYS * DAY_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  writeSecret(path.join(dir, CA_KEY_FILE), await exportKeyPem(keys.privateKey));
  writePublic(path.join(dir, CA_CERT_FILE), `${ca.toString('pem')}\n`);
}

/** Issues a new server certificate (and key) from the CA in dir, replacing any there. */
export async function issueServerCertificate(dir: string, sans: string[]): Promise<void> {
  const caPem = readFileSync(path.join(dir, CA_CERT_FILE), 'utf8');
  const caKeyFile = path.join(dir, CA_KEY_FILE);
  if (!existsSync(caKeyFile)) {
    throw new TlsError(
      `${caKeyFile} is missing, so no server certificate can be issued from ${path.join(dir, CA_CERT_FILE)}; copy the CA's key there (a standby shares its leader's ca.pem and ca-key.pem), or use --tls-cert and --tls-key`,
    );
  }
  const ca = new x509.X509Certificate(caPem);
  const caKey = await importKeyPem(readFileSync(caKeyFile, 'utf8'));
  const keys = await newKeys();
  const now = Date.now();
  const notAfter = Math.min(now + SERVER_VALIDITY_DAYS * DAY_MS, ca.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: 'CN=crossdock controller',
    issuer: ca.subject,
    notBefore: new Date(now - NOT_BEFORE_SLACK_MS),
    notAfter: new Date(notAfter),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(sanEntries(sans), false),
      await x509.AuthorityKeyIdentifierExtension.create(ca, false),
    ],
  });
  // Key first: a crash between the two leaves a key without its certificate, which the next start replaces.
  writeSecret(path.join(dir, SERVER_KEY_FILE), await exportKeyPem(keys.privateKey));
  writePublic(path.join(dir, SERVER_CERT_FILE), `${cert.toString('pem')}\n`);
}

function describe(cert: NodeX509Certificate): ServerCertificateInfo {
  return {
    subject: cert.subject.replace(/\n/g, ', '),
    sans: (cert.subjectAltName ?? '')
      .split(', ')
      .filter((s) => s !== '')
      .map((s) => s.replace(/^(DNS|IP Address):/, '')),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    fingerprint: certificateFingerprint(cert.raw),
  };
}

/** Why the saved server certificate cannot be served as it is (null: it can). */
function serverCertificateProblem(dir: string, sans: string[]): string | null {
  const certFile = path.join(dir, SERVER_CERT_FILE);
  if (!existsSync(certFile) || !existsSync(path.join(dir, SERVER_KEY_FILE))) return 'none yet';
  let cert: NodeX509Certificate;
  try {
    cert = new NodeX509Certificate(readFileSync(certFile));
    const key = createPrivateKey(readFileSync(path.join(dir, SERVER_KEY_FILE)));
    if (!cert.checkPrivateKey(key)) return 'its key does not match';
  } catch (error) {
    return `unreadable (${(error as Error).message})`;
  }
  const ca = new NodeX509Certificate(readFileSync(path.join(dir, CA_CERT_FILE)));
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return `not issued by ${CA_CERT_FILE}`;
  if (new Date(cert.validTo).getTime() - Date.now() < SERVER_RENEW_BEFORE_DAYS * DAY_MS) return `it ends ${new Date(cert.validTo).toISOString()}`;
  const covered = new Set(describe(cert).sans.map(canonicalSan));
  const missing = sans.filter((name) => !covered.has(canonicalSan(name)));
  return missing.length ? `it does not name ${missing.join(', ')}` : null;
}

/**
 * The generated CA and server certificate in dir: made on first start, reused after; the
 * server certificate is issued again (same CA) when it lacks a wanted name, is near its end,
 * or was not issued by the CA beside it. Returns what changed, for the start-up log.
 */
export async function ensureGenerated(dir: string, sans: string[]): Promise<string[]> {
  const changes: string[] = [];
  const caFile = path.join(dir, CA_CERT_FILE);
  if (!existsSync(caFile)) {
    if (existsSync(path.join(dir, CA_KEY_FILE))) {
      throw new TlsError(
        `${path.join(dir, CA_KEY_FILE)} exists without ${caFile}; restore ca.pem beside it, or remove both to make a new CA (every host then joins again)`,
      );
    }
    await createCertificateAuthority(dir);
    changes.push(`created a CA in ${caFile}`);
  }
  const problem = serverCertificateProblem(dir, sans);
  if (problem) {
    await issueServerCertificate(dir, sans);
    changes.push(`issued a server certificate in ${path.join(dir, SERVER_CERT_FILE)} (${problem === 'none yet' ? 'first' : `the saved one: ${problem}`})`);
  }
  return changes;
}

/** Reads what the source names into what the server serves. */
export function loadMaterial(source: TlsSource): TlsMaterial {
  const certFile = source.kind === 'generated' ? path.join(source.dir, SERVER_CERT_FILE) : source.certFile;
  const keyFile = source.kind === 'generated' ? path.join(source.dir, SERVER_KEY_FILE) : source.keyFile;
  let certText: string;
  let key: string;
  try {
    certText = readFileSync(certFile, 'utf8');
    key = readFileSync(keyFile, 'utf8');
  } catch (error) {
    throw new TlsError(`cannot read the TLS certificate or key: ${(error as Error).message}`);
  }
  const chain = pemCertificates(certText);
  if (chain.length === 0) throw new TlsError(`${certFile} holds no PEM certificate`);
  const leaf = new NodeX509Certificate(chain[0]!);
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(key))) throw new TlsError(`the key in ${keyFile} does not belong to the certificate in ${certFile}`);
  } catch (error) {
    if (error instanceof TlsError) throw error;
    throw new TlsError(`${keyFile} holds no usable private key: ${(error as Error).message}`);
  }
  // Executors pin the top of the chain: the generated CA, or the last certificate of an operator's file.
  const caPem = source.kind === 'generated' ? readFileSync(path.join(source.dir, CA_CERT_FILE), 'utf8').trim() : chain[chain.length - 1]!;
  const served = source.kind === 'generated' ? [chain[0]!, caPem] : chain;
  return {
    cert: `${served.join('\n')}\n`,
    key,
    caPem: `${caPem}\n`,
    caFingerprint: certificateFingerprint(new NodeX509Certificate(caPem).raw),
    server: describe(leaf),
  };
}

/**
 * The controller's TLS state: what is served now, and rotation. Renewing issues a new server
 * certificate from the same CA (generated) or reads the operator's files again; the server
 * swaps its secure context, so established connections (executors' WebSockets) stay up and
 * new ones get the new certificate.
 */
export class ControllerTls {
  private current: TlsMaterial;
  private readonly listeners: ((material: TlsMaterial) => void)[] = [];

  private constructor(
    readonly source: TlsSource,
    material: TlsMaterial,
  ) {
    this.current = material;
  }

  static async open(source: TlsSource): Promise<{ tls: ControllerTls; changes: string[] }> {
    const changes = source.kind === 'generated' ? await ensureGenerated(source.dir, source.sans) : [];
    return { tls: new ControllerTls(source, loadMaterial(source)), changes };
  }

  get material(): TlsMaterial {
    return this.current;
  }

  onRenew(listener: (material: TlsMaterial) => void): void {
    this.listeners.push(listener);
  }

  async renew(): Promise<TlsMaterial> {
    if (this.source.kind === 'generated') await issueServerCertificate(this.source.dir, this.source.sans);
    const next = loadMaterial(this.source);
    if (next.caFingerprint !== this.current.caFingerprint) {
      throw new TlsError(
        `the certificate's chain now ends in ${next.caFingerprint}, not the ${this.current.caFingerprint} every host pinned; keep the same CA (replacing it means every host joins again, see the README), then renew again`,
      );
    }
    for (const listener of this.listeners) listener(next);
    this.current = next;
    return next;
  }
}
