// Every error the API can answer with: one stable code, one HTTP status.
import { echo } from '@crossdock/shared';

export const ERROR_STATUS = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  INVALID_CIDR: 400,
  CIDR_HOST_BITS_SET: 400,
  INVALID_PREFIX_LENGTH: 400,
  INVALID_GATEWAY: 400,
  INVALID_ADDRESS: 400,
  INVALID_NAME: 400,
  INVALID_NETWORK_NAME: 400,
  INVALID_INTERFACE: 400,
  INVALID_LABELS: 400,
  // Addresses that can never be right for their use (issue 14).
  POOL_RANGE_NOT_ALLOWED: 400,
  ADDRESS_IN_POOL: 409,
  RESERVED_OUTSIDE_POOL: 400,
  SUBNET_OUTSIDE_POOL: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  POOL_NOT_FOUND: 404,
  HOST_NOT_FOUND: 404,
  SUBNET_NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  POOL_EXISTS: 409,
  POOL_OVERLAP: 409,
  POOL_IN_USE: 409,
  POOL_EXHAUSTED: 409,
  SUBNET_OVERLAP: 409,
  SUBNET_RESERVED: 409,
  NETWORK_NAME_IN_USE: 409,
  HOST_EXISTS: 409,
  ADDRESS_IN_USE: 409,
  JOB_NOT_WAITING: 409,
  PROTOCOL_MISMATCH: 409,
  TLS_OFF: 409,
  TLS_RENEWAL_FAILED: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  INTERNAL_ERROR: 500,
  STORAGE_UNAVAILABLE: 503,
  CONTROLLER_BUSY: 503,
  /** a standby, or a leader that just lost its lock: the body's `leader` names where to go */
  NOT_LEADER: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  /** fields the error body carries beside code and message (NOT_LEADER's `leader`) */
  readonly extra: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, extra?: Record<string, unknown>) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.statusCode = ERROR_STATUS[code];
    this.extra = extra;
  }
}

/** One message per resource for "no such thing", naming where to look. */
export const notFound = {
  host: (name: string) => new ApiError('HOST_NOT_FOUND', `no host named ${echo(name)}; GET /v1/hosts lists the registered hosts`),
  pool: (name: string, existing?: readonly string[]) =>
    new ApiError(
      'POOL_NOT_FOUND',
      `no pool named ${echo(name)}; ${existing === undefined ? 'GET /v1/pools lists them' : existing.length > 0 ? `existing pools: ${existing.join(', ')}` : 'none exist yet (POST /v1/pools)'}`,
    ),
  subnet: (id: number) => new ApiError('SUBNET_NOT_FOUND', `no subnet with id ${id}; GET /v1/subnets lists them`),
  job: (id: number) => new ApiError('JOB_NOT_FOUND', `no job with id ${id}; GET /v1/jobs lists recent ones`),
};
