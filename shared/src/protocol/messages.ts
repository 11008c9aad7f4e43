// The messages between executor and controller: one discriminated union per direction,
// parsed once where they enter (parseExecutorMessage / parseControllerMessage).
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { CommandResult } from '../commands/schema.ts';
import { clip, echo } from '../echo.ts';
import { ObservedState } from './state.ts';

export const PROTOCOL_VERSION = 1;
/** Longest error text a result carries; the executor cuts a longer one to fit. */
export const RESULT_ERROR_MAX_CHARS = 4096;
/**
 * Sent with the WebSocket upgrade by an executor that has not said hello since it started
 * (value `initial`). If the controller is busy with a storm and the host has never applied a
 * job, it is let in at once instead of waiting its turn (the controller checks; the header
 * alone gets nothing).
 */
export const INITIAL_SYNC_HEADER = 'x-crossdock-sync';
export const INITIAL_SYNC_VALUE = 'initial';
/** Shortest reconcile or heartbeat interval either side accepts. */
export const MIN_INTERVAL_MS = 100;

const Digest = Type.String({ pattern: '^[0-9a-f]{12}$' });

// ---- executor -> controller ----

export const Hello = Type.Object(
  {
    type: Type.Literal('hello'),
    protocol: Type.Integer(),
    executorVersion: Type.String({ maxLength: 64 }),
    hostname: Type.String({ maxLength: 255 }),
    state: ObservedState,
    digest: Digest,
  },
  { additionalProperties: false },
);
export type Hello = Static<typeof Hello>;

export const StateReport = Type.Object(
  {
    type: Type.Literal('state'),
    digest: Digest,
    /** the whole snapshot: on request, or when the executor chooses to send it */
    state: Type.Optional(ObservedState),
  },
  { additionalProperties: false },
);

export type StateReport = Static<typeof StateReport>;

export const JobResultItem = Type.Composite(
  [CommandResult, Type.Object({ index: Type.Integer({ minimum: 0 }), text: Type.String() })],
  // Composite does not carry CommandResult's own additionalProperties: false over.
  { additionalProperties: false },
);
export type JobResultItem = Static<typeof JobResultItem>;

export const JobResult = Type.Object(
  {
    type: Type.Literal('result'),
    jobId: Type.Integer({ minimum: 1 }),
    generation: Type.Integer({ minimum: 0 }),
    /** false when the job was refused as a whole (invalid command): nothing ran */
    accepted: Type.Boolean(),
    error: Type.Optional(Type.String({ maxLength: RESULT_ERROR_MAX_CHARS })),
    results: Type.Array(JobResultItem, { maxItems: 200_000 }),
    /** digest of the state observed after the job; absent when observing the host failed */
    digest: Type.Optional(Digest),
    /** why the host could not be observed after the job (the next report repairs the rest) */
    observeError: Type.Optional(Type.String({ maxLength: RESULT_ERROR_MAX_CHARS })),
  },
  { additionalProperties: false },
);
export type JobResult = Static<typeof JobResult>;

export const ExecutorMessage = Type.Union([Hello, StateReport, JobResult]);
export type ExecutorMessage = Static<typeof ExecutorMessage>;

// ---- controller -> executor ----

export const Welcome = Type.Object(
  {
    type: Type.Literal('welcome'),
    protocol: Type.Integer(),
    host: Type.Object({ name: Type.String(), address: Type.String(), interface: Type.String() }, { additionalProperties: false }),
    reconcileIntervalMs: Type.Integer({ minimum: MIN_INTERVAL_MS }),
    heartbeatIntervalMs: Type.Integer({ minimum: MIN_INTERVAL_MS }),
  },
  { additionalProperties: false },
);

/** Commands stay unparsed here: the executor validates them itself, all or nothing. */
export const JobMessage = Type.Object(
  {
    type: Type.Literal('job'),
    jobId: Type.Integer({ minimum: 1 }),
    generation: Type.Integer({ minimum: 0 }),
    commands: Type.Array(Type.Unknown(), { maxItems: 200_000 }),
  },
  { additionalProperties: false },
);
export type JobMessage = Static<typeof JobMessage>;

export const StateRequest = Type.Object({ type: Type.Literal('state.request') }, { additionalProperties: false });

export const Revoked = Type.Object({ type: Type.Literal('revoked'), reason: Type.String() }, { additionalProperties: false });

export const ControllerMessage = Type.Union([Welcome, JobMessage, StateRequest, Revoked]);
export type ControllerMessage = Static<typeof ControllerMessage>;

// ---- parsing ----

/** A path into a message names keys the executor sent (a sysctl key, a label): cut short. */
const PATH_MAX_CHARS = 200;

/**
 * `protocol`: set when the message is the other side's hello or welcome in a protocol version
 * this side does not speak. It is checked before the message's shape, which may have changed
 * with the version, so that each side can say what is wrong instead of "invalid message".
 */
export type Parsed<T> = { ok: true; message: T } | { ok: false; error: string; protocol?: number };

/** The greeting's protocol version (the greeting opens a session: hello, welcome) when it is not PROTOCOL_VERSION. */
function foreignProtocol(value: unknown, greeting: string | undefined): number | undefined {
  if (greeting === undefined || typeof value !== 'object' || value === null) return undefined;
  const { type, protocol } = value as { type?: unknown; protocol?: unknown };
  if (type !== greeting || !Number.isInteger(protocol) || protocol === PROTOCOL_VERSION) return undefined;
  return protocol as number;
}

function parser<T extends TSchema>(schema: T, what: string, greeting?: string) {
  const check = TypeCompiler.Compile(schema);
  // A union of messages is checked member by member, picked by `type`: a union's own error
  // ("Expected union value") would not name the field that is wrong.
  const members = new Map<string, ReturnType<typeof TypeCompiler.Compile>>();
  for (const member of (schema as { anyOf?: TSchema[] }).anyOf ?? []) {
    const literal: unknown = (member as { properties?: { type?: { const?: unknown } } }).properties?.type?.const;
    if (typeof literal === 'string') members.set(literal, TypeCompiler.Compile(member));
  }
  const types = [...members.keys()].join(', ');
  return (raw: unknown): Parsed<Static<T>> => {
    let value = raw;
    if (typeof raw === 'string' || Buffer.isBuffer(raw)) {
      try {
        value = JSON.parse(raw.toString());
      } catch {
        return { ok: false, error: `${what} is not JSON` };
      }
    }
    const protocol = foreignProtocol(value, greeting);
    if (protocol !== undefined) return { ok: false, error: `${what} in protocol version ${protocol}; this side speaks version ${PROTOCOL_VERSION}`, protocol };
    if (check.Check(value)) return { ok: true, message: value };
    const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
    if (members.size > 0 && (typeof type !== 'string' || !members.has(type))) {
      const got = typeof type === 'string' ? `unknown type ${echo(type)}` : 'no "type" field';
      return { ok: false, error: `invalid ${what}: ${got}; expected one of ${types}` };
    }
    const first = (typeof type === 'string' ? (members.get(type) ?? check) : check).Errors(value).First();
    return {
      ok: false,
      error: `invalid ${what}${typeof type === 'string' ? ` "${type}"` : ''}: ${first ? `${clip(first.path || '/', PATH_MAX_CHARS)} ${first.message}` : 'unknown shape'}`,
    };
  };
}

export const parseExecutorMessage = parser(ExecutorMessage, 'executor message', 'hello');
export const parseControllerMessage = parser(ControllerMessage, 'controller message', 'welcome');
export const parseObservedState = parser(ObservedState, 'observed state');
