// The executor channel: a WebSocket at /v1/agent, and the same messages over HTTP polling
// for executors that cannot hold a WebSocket. Authenticated by the host's own token, checked
// before the upgrade and before any body is read. A message larger than a host of this fleet
// could need is refused before it is parsed.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  INITIAL_SYNC_HEADER,
  INITIAL_SYNC_VALUE,
  PROTOCOL_VERSION,
  parseExecutorMessage,
  type ControllerMessage,
  type ExecutorMessage,
} from '@crossdock/shared';
import { Transform } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { bearerToken, hashToken } from '../../../auth/tokens.ts';
import { ApiError } from '../../../errors.ts';
import type { AdmissionTicket } from '../../../agents/admission.ts';
import { PollingSession, type Session } from '../../../agents/hub.ts';
import type { PlanHost } from '../../../planner/desired.ts';
import { IdParams } from '../../../schemas.ts';
import { LogThrottle } from '../../../log-throttle.ts';
import { dialectOf } from '../../../db/client.ts';
import { findHostByTokenHash } from '../../../db/raw-sql.ts';
import { FragmentedSender } from '../../../agents/fragmented-sender.ts';
import agentSubnets from './subnets.ts';

const MAX_POLL_WAIT_S = 60;
/** A polling executor that has not polled for this long is offline. */
const POLL_SESSION_TTL_MS = (MAX_POLL_WAIT_S + 30) * 1000;
const CLOSE_POLICY_VIOLATION = 1008;

/** The transport's own ceiling; the fleet-relative limit (Reconciler.messageByteLimit) is lower. */
export const MAX_AGENT_MESSAGE_BYTES = 64 * 2 ** 20;

declare module 'fastify' {
  interface FastifyRequest {
    agentHost?: Omit<PlanHost, 'subnets'>;
    /** a WebSocket's place among the executors syncing at once */
    agentAdmission?: AdmissionTicket;
  }
  interface FastifyContextConfig {
    /** the route asks for a place among the syncing executors before it looks up the token */
    admitFirst?: boolean;
  }
}

const MessagesReply = Type.Object({ items: Type.Array(Type.Unknown()) });

const agent: FastifyPluginAsyncTypebox = async (app) => {
  const { prisma, agents } = app;
  const { hub, reconciler, admission } = agents;

  const dialect = dialectOf(prisma);
  async function authenticate(request: FastifyRequest): Promise<void> {
    const token = bearerToken(request.headers.authorization);
    if (!token) throw new ApiError('UNAUTHORIZED', 'missing host token; send "Authorization: Bearer <host token>" (the token POST /v1/hosts returned)');
    // Lookup by a digest of the token: the token itself never reaches the database.
    const host = await findHostByTokenHash(prisma, dialect, hashToken(token));
    if (!host) throw new ApiError('UNAUTHORIZED', 'host token refused; it was rotated or the host was deleted (POST /v1/hosts/<name>/token issues a new one)');
    request.agentHost = host;
  }
  // onRequest: before the upgrade, and before a body of any size is read. The WebSocket route
  // authenticates in its own onRequest, after admission (below).
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.admitFirst !== true) await authenticate(request);
  });

  const refusals = new LogThrottle();
  function logRefusal(request: FastifyRequest, error: ApiError, jobId?: number): void {
    const host = request.agentHost!.name;
    const what = error.code === 'PAYLOAD_TOO_LARGE' ? 'refused an oversized report' : 'refused a job result';
    const turn = refusals.take(`${host}/${error.code}`);
    if (turn.log) request.log.warn({ host, jobId, code: error.code, reason: error.message, suppressed: turn.suppressed }, what);
  }

  function oversized(bytes: number, limit: number): ApiError {
    const size = Number.isFinite(bytes) ? `of ${bytes} bytes ` : '';
    return new ApiError(
      'PAYLOAD_TOO_LARGE',
      `a message ${size}is more than the ${limit} bytes a host of this fleet may send (about ${reconciler.routeBudget()} routes); check \`ip route show proto 252\` on the host`,
    );
  }

  // HTTP bodies: the declared length first, then the bytes as they arrive (chunked bodies).
  app.addHook('preParsing', async (request, _reply, payload) => {
    const limit = reconciler.messageByteLimit();
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > limit) throw oversized(declared, limit);
    let seen = 0;
    return payload.pipe(
      new Transform({
        transform(chunk: Buffer, _encoding, done) {
          seen += chunk.length;
          if (seen > limit) done(oversized(seen, limit));
          else done(null, chunk);
        },
      }),
    );
  });

  function welcome(host: NonNullable<FastifyRequest['agentHost']>): ControllerMessage {
    const { reconcileIntervalMs, heartbeatIntervalMs } = reconciler.options;
    return {
      type: 'welcome',
      protocol: PROTOCOL_VERSION,
      host: { name: host.name, address: host.address, interface: host.interface },
      reconcileIntervalMs,
      heartbeatIntervalMs,
    };
  }

  /** An executor greeting in a protocol version this controller does not speak: logged, and refused. */
  function protocolMismatch(request: FastifyRequest, protocol: number): string {
    const host = request.agentHost!.name;
    const reason = `protocol version ${protocol} is not spoken here: this controller speaks version ${PROTOCOL_VERSION}; run the executor of the controller's release on host "${host}"`;
    request.log.warn(
      { host, protocol, controllerProtocol: PROTOCOL_VERSION },
      `refused the executor of host "${host}": it speaks protocol version ${protocol}, this controller ${PROTOCOL_VERSION}`,
    );
    return reason;
  }

  /** Hands a message to the reconciler; a refused job result comes back as an ApiError. */
  async function handle(host: { id: number; name: string }, message: ExecutorMessage): Promise<void> {
    if (message.type === 'hello') hub.greeted(host.id, { version: message.executorVersion, protocol: message.protocol });
    switch (message.type) {
      case 'hello':
      case 'state': {
        const problem = reconciler.reportProblem(message.state);
        if (problem) throw new ApiError('PAYLOAD_TOO_LARGE', problem);
        return message.type === 'hello' ? reconciler.onHello(host.id, message) : reconciler.onState(host.id, message.digest, message.state);
      }
      case 'result': {
        const outcome = reconciler.onResult(host.id, message);
        if (outcome.accepted) return outcome.recorded;
        if (outcome.reason === 'invalid') throw new ApiError('VALIDATION_FAILED', outcome.message);
        // Not waiting: a job of another host (or none) is "not found" to this host; its own
        // finished job is a conflict. Nothing tells a host whether another host's job exists.
        const job = await prisma.job.findUnique({ where: { id: message.jobId }, select: { hostId: true, status: true } });
        if (!job || job.hostId !== host.id) {
          throw new ApiError('JOB_NOT_FOUND', `no job ${message.jobId} was sent to host "${host.name}"; a host reports results only for its own jobs`);
        }
        throw new ApiError(
          'JOB_NOT_WAITING',
          `job ${message.jobId} is ${job.status} and takes no more results; a result is taken once, while its job waits for it`,
        );
      }
    }
  }

  // A reconnect storm is taken a bounded number of hosts at a time (agents/admission.ts). The
  // place is asked for before the token is looked up: an executor told to come back later costs
  // no database query, however often a storm's executors come back. (A bad token is still
  // refused 401 whenever a place is free, and a place it took is given back at once.) The one
  // exception: an executor that says it has not synced yet is looked up when refused, and if
  // its host has never applied a job, it takes a newcomer's place instead of waiting its turn.
  const admit = async (request: FastifyRequest, reply: FastifyReply) => {
    // One decision per connection, so that crossdock_agent_refused_total counts each refusal once.
    let newcomer = false;
    if (admission.full && request.headers[INITIAL_SYNC_HEADER] === INITIAL_SYNC_VALUE) {
      await authenticate(request);
      newcomer = reconciler.neverSynced(request.agentHost!.id);
    }
    const outcome = newcomer ? admission.admitNewcomer() : admission.admit();
    if (outcome.admitted) {
      request.agentAdmission = outcome.ticket;
      if (request.agentHost) return;
      try {
        await authenticate(request);
      } catch (error) {
        // Not a sync: a refused token must not make the syncs look faster than they are.
        outcome.ticket.cancel();
        throw error;
      }
      return;
    }
    void reply.header('retry-after', String(outcome.retryAfterS));
    throw new ApiError(
      'CONTROLLER_BUSY',
      `the controller is syncing ${outcome.syncing} executors that connected before this one; retry in ${outcome.retryAfterS} s (Retry-After)`,
    );
  };

  app.get('/', { websocket: true, schema: { hide: true }, config: { admitFirst: true }, onRequest: admit }, (socket: WebSocket, request) => {
    const host = request.agentHost!;
    const ticket = request.agentAdmission;
    // The fleet-relative limit as this connection's frame limit: ws then refuses an oversized
    // message from its header, before receiving and unmasking megabytes (about 20 ms of event
    // loop per 10 MB), and closes with 1009. ws has no public per-connection setter; where its
    // internals differ, the length check on each message below still refuses it.
    const receiver = (socket as unknown as { _receiver?: { _maxPayload?: number } })._receiver;
    if (receiver && typeof receiver._maxPayload === 'number') receiver._maxPayload = reconciler.messageByteLimit();
    socket.on('error', (error: Error & { code?: string }) => {
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') logRefusal(request, oversized(NaN, reconciler.messageByteLimit()));
      else request.log.warn({ host: host.name, err: error }, 'executor connection error');
    });
    let alive = true;
    const sender = new FragmentedSender(socket);
    const session: Session = {
      hostId: host.id,
      transport: 'websocket',
      send: (message) => sender.send(JSON.stringify(message)),
      close: (code, reason) => socket.close(code, reason),
    };
    const heartbeat = setInterval(() => {
      if (!alive) {
        request.log.warn({ host: host.name }, 'executor missed a heartbeat; dropping the connection');
        socket.terminate();
        return;
      }
      alive = false;
      socket.ping();
    }, reconciler.options.heartbeatIntervalMs);
    socket.on('pong', () => {
      alive = true;
      reconciler.touch(host.id);
    });
    socket.on('message', (data: Buffer) => {
      alive = true;
      const limit = reconciler.messageByteLimit();
      if (data.length > limit) {
        logRefusal(request, oversized(data.length, limit));
        return;
      }
      const parsed = parseExecutorMessage(data.toString());
      if (!parsed.ok && parsed.protocol !== undefined) {
        protocolMismatch(request, parsed.protocol);
        socket.close(CLOSE_POLICY_VIOLATION, `protocol version ${parsed.protocol} is not spoken here; this controller speaks version ${PROTOCOL_VERSION}`);
        return;
      }
      if (!parsed.ok) {
        request.log.warn({ host: host.name, error: parsed.error }, 'refused an executor message');
        socket.close(CLOSE_POLICY_VIOLATION, parsed.error.slice(0, 120));
        return;
      }
      // A refused message is dropped and logged; the connection stays.
      handle(host, parsed.message)
        .catch((error: unknown) => {
          if (error instanceof ApiError) logRefusal(request, error, parsed.message.type === 'result' ? parsed.message.jobId : undefined);
          else request.log.error({ host: host.name, err: error }, 'could not handle an executor message');
        })
        // Synced: the hello's plan is sent. The next executor in a storm may come in.
        .finally(() => parsed.message.type === 'hello' && ticket?.release());
    });
    socket.on('close', () => {
      ticket?.release();
      clearInterval(heartbeat);
      hub.detach(session);
    });
    hub.attach(session);
    session.send(welcome(host));
  });

  /** The polling session of this host, created (and attached) on first use. */
  function pollingSession(hostId: number): PollingSession {
    const current = hub.get(hostId);
    if (current instanceof PollingSession && !current.closed) return current;
    const session = new PollingSession(hostId);
    hub.attach(session);
    return session;
  }

  const reaper = setInterval(() => {
    for (const s of hub.all()) {
      if (s instanceof PollingSession && Date.now() - s.lastPollAt > POLL_SESSION_TTL_MS) hub.detach(s);
    }
  }, 5_000);
  reaper.unref();
  app.addHook('onClose', async () => clearInterval(reaper));

  // Subnets of networks Docker owns (the executor's IPAM plugin): behind the same token check.
  await app.register(agentSubnets, { prefix: '/subnets' });

  app.post('/state', { bodyLimit: MAX_AGENT_MESSAGE_BYTES, schema: { hide: true, response: { 200: MessagesReply } } }, async (request) => {
    const host = request.agentHost!;
    const parsed = parseExecutorMessage(request.body);
    if (!parsed.ok && parsed.protocol !== undefined) throw new ApiError('PROTOCOL_MISMATCH', protocolMismatch(request, parsed.protocol));
    if (!parsed.ok || (parsed.message.type !== 'hello' && parsed.message.type !== 'state')) {
      throw new ApiError('VALIDATION_FAILED', parsed.ok ? 'POST /v1/agent/state takes a hello or state message' : parsed.error);
    }
    const session = pollingSession(host.id);
    if (parsed.message.type === 'hello') session.send(welcome(host));
    await handle(host, parsed.message);
    return { items: await session.take(0) };
  });

  app.get(
    '/jobs',
    {
      schema: {
        hide: true,
        querystring: Type.Object({ wait: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_POLL_WAIT_S })) }),
        response: { 200: MessagesReply },
      },
    },
    async (request) => {
      const session = pollingSession(request.agentHost!.id);
      reconciler.touch(request.agentHost!.id);
      return { items: await session.take((request.query.wait ?? 0) * 1000) };
    },
  );

  app.post(
    '/jobs/:id/result',
    { bodyLimit: MAX_AGENT_MESSAGE_BYTES, schema: { hide: true, params: IdParams, response: { 200: MessagesReply } } },
    async (request) => {
      const host = request.agentHost!;
      const parsed = parseExecutorMessage(request.body);
      if (!parsed.ok || parsed.message.type !== 'result' || parsed.message.jobId !== request.params.id) {
        throw new ApiError('VALIDATION_FAILED', parsed.ok ? `the body must be the result message of job ${request.params.id}` : parsed.error);
      }
      const session = pollingSession(host.id);
      await handle(host, parsed.message);
      return { items: await session.take(0) };
    },
  );
};

export default agent;
