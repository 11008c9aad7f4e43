// The executor channel: a WebSocket at /v1/agent, and the same messages over HTTP polling
// for executors that cannot hold a WebSocket. Authenticated by the host's own token, checked
// before the upgrade.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { PROTOCOL_VERSION, parseExecutorMessage, type ControllerMessage, type ExecutorMessage } from '@crossdock/shared';
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { bearerToken, hashToken } from '../../../auth/tokens.ts';
import { ApiError } from '../../../errors.ts';
import { PollingSession, type Session } from '../../../agents/hub.ts';

const MAX_POLL_WAIT_S = 60;
/** A polling executor that has not polled for this long is offline. */
const POLL_SESSION_TTL_MS = (MAX_POLL_WAIT_S + 30) * 1000;
const CLOSE_POLICY_VIOLATION = 1008;

declare module 'fastify' {
  interface FastifyRequest {
    agentHost?: { id: number; name: string; address: string; interface: string };
  }
}

const MessagesReply = Type.Object({ items: Type.Array(Type.Unknown()) });

const agent: FastifyPluginAsyncTypebox = async (app) => {
  const { prisma, agents } = app;
  const { hub, reconciler } = agents;

  async function authenticate(request: FastifyRequest): Promise<void> {
    const token = bearerToken(request.headers.authorization);
    if (!token) throw new ApiError('UNAUTHORIZED', 'missing host token; send "Authorization: Bearer <host token>" (the token POST /v1/hosts returned)');
    // Lookup by a digest of the token: the token itself never reaches the database.
    const host = await prisma.host.findUnique({ where: { tokenHash: hashToken(token) }, select: { id: true, name: true, address: true, interface: true } });
    if (!host) throw new ApiError('UNAUTHORIZED', 'host token refused; it was rotated or the host was deleted (POST /v1/hosts/<name>/token issues a new one)');
    request.agentHost = host;
  }
  app.addHook('preValidation', authenticate);

  function welcome(host: NonNullable<FastifyRequest['agentHost']>): ControllerMessage {
    const { reconcileIntervalMs, heartbeatIntervalMs } = reconciler.options;
    return { type: 'welcome', protocol: PROTOCOL_VERSION, host: { name: host.name, address: host.address, interface: host.interface }, reconcileIntervalMs, heartbeatIntervalMs };
  }

  async function handle(hostId: number, message: ExecutorMessage): Promise<void> {
    switch (message.type) {
      case 'hello':
        return reconciler.onHello(hostId, message);
      case 'state':
        return reconciler.onState(hostId, message.digest, message.state);
      case 'result':
        return reconciler.onResult(hostId, message);
    }
  }

  app.get('/', { websocket: true, schema: { hide: true } }, (socket: WebSocket, request) => {
    const host = request.agentHost!;
    let alive = true;
    const session: Session = {
      hostId: host.id,
      transport: 'websocket',
      send: (message) => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
      },
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
    socket.on('message', (data) => {
      alive = true;
      const parsed = parseExecutorMessage(data.toString());
      if (!parsed.ok) {
        request.log.warn({ host: host.name, error: parsed.error }, 'refused an executor message');
        socket.close(CLOSE_POLICY_VIOLATION, parsed.error.slice(0, 120));
        return;
      }
      void handle(host.id, parsed.message);
    });
    socket.on('close', () => {
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

  app.post('/state', { schema: { hide: true, response: { 200: MessagesReply } } }, async (request) => {
    const host = request.agentHost!;
    const parsed = parseExecutorMessage(request.body);
    if (!parsed.ok || (parsed.message.type !== 'hello' && parsed.message.type !== 'state')) {
      throw new ApiError('VALIDATION_FAILED', parsed.ok ? 'POST /v1/agent/state takes a hello or state message' : parsed.error);
    }
    const session = pollingSession(host.id);
    if (parsed.message.type === 'hello') session.send(welcome(host));
    await handle(host.id, parsed.message);
    return { items: await session.take(0) };
  });

  app.get(
    '/jobs',
    { schema: { hide: true, querystring: Type.Object({ wait: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_POLL_WAIT_S })) }), response: { 200: MessagesReply } } },
    async (request) => {
      const session = pollingSession(request.agentHost!.id);
      reconciler.touch(request.agentHost!.id);
      return { items: await session.take((request.query.wait ?? 0) * 1000) };
    },
  );

  app.post(
    '/jobs/:id/result',
    { schema: { hide: true, params: Type.Object({ id: Type.Integer({ minimum: 1 }) }), response: { 200: MessagesReply } } },
    async (request) => {
      const host = request.agentHost!;
      const parsed = parseExecutorMessage(request.body);
      if (!parsed.ok || parsed.message.type !== 'result' || parsed.message.jobId !== request.params.id) {
        throw new ApiError('VALIDATION_FAILED', parsed.ok ? `the body must be the result message of job ${request.params.id}` : parsed.error);
      }
      const session = pollingSession(host.id);
      await handle(host.id, parsed.message);
      return { items: await session.take(0) };
    },
  );
};

export default agent;
