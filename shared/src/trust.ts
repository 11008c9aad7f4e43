// Pinned trust in the controller (issue 17), for the executor and the CLI alike: the join line
// carries the SHA-256 fingerprint of the controller's CA. The first connection reads the chain
// the controller presents and keeps the certificate with that fingerprint; from then on every
// connection verifies the controller's chain against that one CA (and its name against the
// certificate's), the way k3s agents trust their server through the hash in the join token.
// Anyone can present the CA certificate, which is public: only a server holding a certificate
// the CA signed passes the verification that follows. Kept out of the package index: it does
// I/O, and the index is shared with the browser dashboard.
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import tls from 'node:tls';

export const FINGERPRINT_PREFIX = 'sha256:';
/** How long the probe that reads the controller's chain may take. */
export const TRUST_PROBE_TIMEOUT_MS = 10_000;

/** A trust problem: the controller is not the one pinned. Retrying the same controller fails the same way. */
export class TrustError extends Error {
  override readonly name = 'TrustError';
}

/** sha256:<64 lowercase hex> of a certificate's DER. */
export function certificateFingerprint(der: Uint8Array): string {
  return `${FINGERPRINT_PREFIX}${createHash('sha256').update(der).digest('hex')}`;
}

/** Accepts sha256:<hex>, bare hex, and the colon-separated upper-case form openssl prints. */
export function parseFingerprint(text: string): string | null {
  const hex = text
    .trim()
    .replace(/^sha256:/i, '')
    .replace(/:/g, '')
    .toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? `${FINGERPRINT_PREFIX}${hex}` : null;
}

export function pemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export function derToPem(der: Uint8Array): string {
  const base64 = Buffer.from(der).toString('base64');
  return `-----BEGIN CERTIFICATE-----\n${base64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----`;
}

export function pemFingerprint(pem: string): string {
  return certificateFingerprint(new X509Certificate(pem).raw);
}

export interface TrustSettings {
  /** the CA's fingerprint from the join line */
  caFingerprint?: string;
  /** a PEM file of the CA(s) to trust instead of the system's */
  caFile?: string;
}

/** What a TLS client (https.request, ws) needs to verify the controller. */
export interface ControllerTlsOptions {
  ca?: string[];
  rejectUnauthorized: true;
  servername?: string;
}

/** The certificates of a connected TLS socket's chain, leaf first. */
function presentedChain(socket: tls.TLSSocket): tls.DetailedPeerCertificate[] {
  const chain: tls.DetailedPeerCertificate[] = [];
  let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert?.raw && !chain.some((c) => c.raw.equals(cert!.raw))) {
    chain.push(cert);
    cert = cert.issuerCertificate;
  }
  return chain;
}

function hostAndPort(url: URL): { host: string; port: number } {
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || (url.protocol === 'https:' || url.protocol === 'wss:' ? 443 : 80)) };
}

/**
 * Reads the chain the controller at url presents (without trusting it yet) and returns the
 * certificate whose fingerprint is the pinned one, or fails saying what was expected and seen.
 */
export function fetchPinnedCertificate(url: string, fingerprint: string): Promise<string> {
  const target = new URL(url);
  const { host, port } = hostAndPort(target);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, servername: isIP(host) ? undefined : host, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    socket.setTimeout(TRUST_PROBE_TIMEOUT_MS, () =>
      socket.destroy(new Error(`no TLS handshake with ${host}:${port} within ${TRUST_PROBE_TIMEOUT_MS / 1000} s`)),
    );
    socket.once('error', (error: NodeJS.ErrnoException) => {
      // A controller that speaks plain HTTP answers the handshake with text (an OpenSSL "wrong version number").
      if (/wrong version number|packet length too long|unknown protocol/i.test(error.message)) {
        reject(
          new TrustError(`the controller at ${url} does not speak TLS (is it running with CROSSDOCK_TLS=off? then use an http:// URL and no --ca-fingerprint)`),
        );
      } else reject(error);
    });
    socket.once('secureConnect', () => {
      const chain = presentedChain(socket);
      socket.end();
      const seen = chain.map((c) => certificateFingerprint(c.raw));
      const index = seen.indexOf(fingerprint);
      if (index === -1) {
        reject(
          new TrustError(
            `refusing the controller at ${url}: its certificate chain does not contain the pinned CA; expected ${fingerprint}, saw ${seen.join(', ') || 'no certificate'} (a controller whose CA was replaced needs every host to join again with the new join line)`,
          ),
        );
        return;
      }
      resolve(derToPem(chain[index]!.raw));
    });
  });
}

/**
 * The trust one client places in its controller(s): pinned fingerprint, CA file, or the
 * system's CAs. tlsOptions() gives what each connection to an https/wss URL needs.
 */
export class ControllerTrust {
  private caPem: string[] | undefined;
  readonly fingerprint: string | undefined;

  constructor(private readonly settings: TrustSettings = {}) {
    if (settings.caFingerprint !== undefined) {
      const parsed = parseFingerprint(settings.caFingerprint);
      if (!parsed) throw new TrustError(`CA fingerprint "${settings.caFingerprint}" is not sha256:<64 hex digits>; copy it from the join line`);
      this.fingerprint = parsed;
    }
    if (settings.caFile !== undefined) {
      let text: string;
      try {
        text = readFileSync(settings.caFile, 'utf8');
      } catch (error) {
        throw new TrustError(`cannot read the CA file ${settings.caFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      const certs = pemCertificates(text);
      if (certs.length === 0) throw new TrustError(`${settings.caFile} holds no PEM certificate; give the controller's ca.pem`);
      if (this.fingerprint && !certs.some((c) => pemFingerprint(c) === this.fingerprint)) {
        throw new TrustError(
          `the CA file ${settings.caFile} does not hold the pinned CA: expected ${this.fingerprint}, it holds ${certs.map(pemFingerprint).join(', ')}`,
        );
      }
      this.caPem = certs;
    }
  }

  /** Whether a pin or a CA file was given: an http:// controller would then be a mistake. */
  get pinned(): boolean {
    return this.fingerprint !== undefined || this.settings.caFile !== undefined;
  }

  /** The trusted CA certificates, once known (a pin is resolved on the first connection). */
  get trustedCertificates(): string[] | undefined {
    return this.caPem;
  }

  /** Options for a TLS connection to url; undefined for plain http/ws (refused when trust was pinned). */
  async tlsOptions(url: string): Promise<ControllerTlsOptions | undefined> {
    const target = new URL(url);
    const secure = target.protocol === 'https:' || target.protocol === 'wss:';
    if (!secure) {
      if (this.pinned) {
        throw new TrustError(
          `the controller URL ${url} is plain ${target.protocol.replace(':', '')}, but a CA is pinned; use https:// (the join line's URL), or drop --ca-fingerprint for a controller behind a TLS-terminating proxy`,
        );
      }
      return undefined;
    }
    if (!this.caPem && this.fingerprint) this.caPem = [await fetchPinnedCertificate(url, this.fingerprint)];
    const host = hostAndPort(target).host;
    return { ...(this.caPem ? { ca: this.caPem } : {}), rejectUnauthorized: true, ...(isIP(host) ? {} : { servername: host }) };
  }
}

/** TLS errors from verifying the controller's certificate (as opposed to reaching it at all). */
const VERIFICATION_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A message an operator can act on for a TLS verification failure, or undefined for other errors. */
export function describeTrustFailure(error: unknown, url: string, trust: ControllerTrust): string | undefined {
  if (error instanceof TrustError) return error.message;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (!VERIFICATION_CODES.has(code)) return undefined;
  const anchor = trust.fingerprint ? `the pinned CA ${trust.fingerprint}` : 'the trusted CAs';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `refusing the controller at ${url}: its certificate does not name ${new URL(url).hostname} (${(error as Error).message}); start the controller with --tls-san ${new URL(url).hostname}, or use an address it names`;
  }
  return `refusing the controller at ${url}: its certificate does not verify against ${anchor} (${code}: ${(error as Error).message})`;
}

export interface TrustedResponse {
  status: number;
  text: string;
}

/**
 * One HTTP(S) request with the controller's trust: what fetch would do, but with a CA of our
 * own (Node 20's fetch takes none without the undici package).
 */
export async function trustedRequest(
  trust: ControllerTrust,
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal },
): Promise<TrustedResponse> {
  const tlsOptions = await trust.tlsOptions(url);
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const request = (target.protocol === 'https:' ? https : http).request(
      target,
      {
        method: init.method,
        headers: { ...init.headers, ...(init.body === undefined ? {} : { 'content-length': Buffer.byteLength(init.body) }) },
        signal: init.signal,
        agent: false,
        ...tlsOptions,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(init.body);
  });
}

/**
 * A fetch with the controller's trust, for code written against fetch (the CLI's client):
 * errors come as fetch's do, a TypeError whose cause is the socket's error.
 */
export function trustedFetch(trust: ControllerTrust): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    try {
      const response = await trustedRequest(trust, url, {
        method: init?.method ?? 'GET',
        headers: (init?.headers ?? {}) as Record<string, string>,
        body: typeof init?.body === 'string' ? init.body : undefined,
        signal: init?.signal ?? undefined,
      });
      return new Response(response.status === 204 || response.status === 304 ? null : response.text, { status: response.status });
    } catch (error) {
      if ((error as Error).name === 'AbortError' || (error as Error).name === 'TimeoutError') throw (init?.signal?.reason as Error | undefined) ?? error;
      throw new TypeError('fetch failed', { cause: error });
    }
  }) as typeof fetch;
}
