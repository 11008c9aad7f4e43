// The join line: the one command an operator runs on a new host to install its executor,
// answered by POST /v1/hosts (and a token rotation) for the CLI and the README to show.
import { joinLine } from '@crossdock/shared';
import type { FastifyRequest } from 'fastify';

/**
 * The controller's URL as hosts reach it: the configured advertise URL, or else the URL the
 * operator called (scheme and Host header), which is right whenever the operator and the hosts
 * reach the controller the same way. Behind a proxy, or when the API is called on localhost,
 * the advertise URL says what hosts should use.
 */
export function controllerUrlFor(request: FastifyRequest, advertiseUrl: string | undefined): string {
  return advertiseUrl ?? `${request.protocol}://${request.host}`;
}

/** caFingerprint: the CA this controller's certificate chains to (none with TLS off). */
export function joinFor(request: FastifyRequest, advertiseUrl: string | undefined, token: string, caFingerprint: string | undefined): string {
  return joinLine(controllerUrlFor(request, advertiseUrl), token, caFingerprint);
}

export const JOIN_DESCRIPTION =
  "what to run, as root, on the host, in the directory where the one-file executor (executor/dist/crossdock-executor.mjs) was copied: it installs the executor as a systemd service connected to this controller (the controller's URL is CROSSDOCK_ADVERTISE_URL, else the URL this request was made to) and trusting only a controller whose certificate chains to the CA of caFingerprint. Holds the token: shown once";

export const CA_FINGERPRINT_DESCRIPTION =
  "SHA-256 fingerprint of the controller's CA (sha256:<hex>), which the join line pins; null when the controller serves plain HTTP (CROSSDOCK_TLS=off)";
