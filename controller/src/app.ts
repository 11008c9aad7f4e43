// The Fastify app as a plugin-composed instance: testable with inject, starts nothing.
import { EventEmitter } from 'node:events';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { clip } from '@crossdock/shared';
import Fastify, { type FastifyBaseLogger, type FastifyPluginAsync, type FastifyReply, type FastifyServerOptions } from 'fastify';
import { hashToken } from './auth/tokens.ts';
import websocket from '@fastify/websocket';
import type { Fleet, FleetEvent } from './fleet.ts';
import { Admission } from './agents/admission.ts';
import { MemoryReclaimer } from './agents/memory.ts';
import { DEFAULTS } from './config.ts';
import { AgentHub, CLOSE_TOKEN_ROTATED } from './agents/hub.ts';
import { JobStore } from './agents/jobs.ts';
import { DEFAULT_RECONCILER_OPTIONS, Reconciler, type ReconcilerOptions } from './agents/reconciler.ts';
import agentRoutes, { MAX_AGENT_MESSAGE_BYTES } from './routes/v1/agent/index.ts';
import jobsRoutes from './routes/v1/jobs/index.ts';
import type { PrismaClient } from './generated/prisma/client.ts';
import type { Ipam } from './ipam/ipam.ts';
import { notLeaderError, type Leadership } from './leadership/leadership.ts';
import { adminAuth } from './plugins/auth.ts';
import metricsPlugin from './plugins/metrics.ts';
import statusRoutes from './routes/v1/status/index.ts';
import { QUOTED_TEXT_MAX_CHARS, registerErrorHandling } from './plugins/errors.ts';
import { compileValidator } from './plugins/validation.ts';
import hostsRoutes from './routes/v1/hosts/index.ts';
import poolsRoutes from './routes/v1/pools/index.ts';
import subnetsRoutes from './routes/v1/subnets/index.ts';
import eventsRoutes from './routes/v1/events/index.ts';
import uiRoutes from './routes/ui/index.ts';
import tlsRoutes from './routes/v1/tls/index.ts';
import type { ControllerTls } from './tls.ts';
import { ErrorBody } from './schemas.ts';

declare module 'fastify' {
  interface FastifyInstance {
    prisma: PrismaClient;
    ipam: Ipam;
    /** controller-wide events ('token.rotated', ...) */
    events: EventEmitter;
    agents: { hub: AgentHub; reconciler: Reconciler; fleet: Fleet; jobs: JobStore; admission: Admission };
    /** the certificates served (null: plain HTTP, CROSSDOCK_TLS=off, or an app under inject) */
    tls: ControllerTls | null;
  }
}

export interface AppOptions {
  prisma: PrismaClient;
  ipam: Ipam;
  adminToken: string;
  /** GET /metrics needs this bearer token; undefined: no token */
  metricsToken?: string;
  logger?: FastifyServerOptions['logger'] | FastifyBaseLogger;
  reconciler?: Partial<ReconcilerOptions>;
  /** the built dashboard's folder, served at /ui (none: no /ui) */
  uiDir?: string;
  /** the controller's URL as hosts reach it, for the join line (CROSSDOCK_ADVERTISE_URL) */
  advertiseUrl?: string;
  /** the certificates the server serves, for the join line's fingerprint and /v1/tls (none: plain HTTP) */
  tls?: ControllerTls;
  /** Fastify's serverFactory: the server.ts HTTPS server */
  serverFactory?: FastifyServerOptions['serverFactory'];
  /**
   * false: build everything but start no reconciler (it writes): a standby builds one app it
   * never serves, so the one it builds when elected finds Fastify, Ajv and V8 warm (measured
   * under load: 7.4 s cold, 1.9 s warm).
   */
  startReconciler?: boolean;
  /** whose term this app serves in: /healthz names the role, and /v1 refuses once the term is lost (none: always the leader) */
  leadership?: Leadership;
  /** executors syncing at once before more are told to retry (default: DEFAULTS.maxSyncing; 0: no limit) */
  maxSyncing?: number;
}

export const API_VERSION = '0.1.0';

export async function buildApp(options: AppOptions) {
  const app = Fastify({
    ...(isLoggerInstance(options.logger) ? { loggerInstance: options.logger } : { logger: options.logger ?? false }),
    bodyLimit: 1024 * 1024,
    ...(options.serverFactory ? { serverFactory: options.serverFactory } : {}),
    // A deposed leader's app, while it closes, still routes what arrives on open connections, so
    // that its onRequest hook (below) answers NOT_LEADER naming the new leader; Fastify's own
    // answer while closing is a bare 503 that says nothing of where to go.
    ...(options.leadership ? { return503OnClosing: false } : {}),
    ajv: { customOptions: { removeAdditional: false } },
    // Errors Fastify raises before routing (a malformed URL, a path too long) get our shape too.
    frameworkErrors: (error, _request, reply) => {
      void (reply as FastifyReply)
        .code(error.statusCode ?? 400)
        .send({ error: { code: 'VALIDATION_FAILED', message: `${clip(error.message, QUOTED_TEXT_MAX_CHARS)}; check the URL` } });
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(compileValidator);
  app.decorate('prisma', options.prisma);
  app.decorate('ipam', options.ipam);
  app.decorate('events', new EventEmitter());
  app.decorate('tls', options.tls ?? null);

  const jobs = new JobStore(options.prisma, options.ipam.writer);
  let reconciler: Reconciler | undefined;
  const hub = new AgentHub(
    (session) => reconciler!.onAttach(session),
    (hostId) => reconciler!.onDetach(hostId),
  );
  reconciler = new Reconciler(options.ipam.fleet, hub, jobs, app.log, { ...DEFAULT_RECONCILER_OPTIONS, ...options.reconciler });
  if (options.startReconciler !== false) await reconciler.start();
  const admission = new Admission(options.maxSyncing ?? DEFAULTS.maxSyncing);
  app.decorate('agents', { hub, reconciler, fleet: options.ipam.fleet, jobs, admission });
  const reclaimer = new MemoryReclaimer(app.log);
  const onWork = (units: number) => reclaimer.note(units);
  reconciler.progress.on('work', onWork);
  const onChange = (event: FleetEvent) => reconciler!.onChange(event);
  options.ipam.fleet.events.on('change', onChange);
  app.events.on('token.rotated', (hostId: number) => hub.disconnect(hostId, CLOSE_TOKEN_ROTATED, 'token rotated'));
  app.addHook('onClose', async () => {
    options.ipam.fleet.events.off('change', onChange);
    hub.closeAll(1001, 'controller shutting down');
    reconciler!.progress.off('work', onWork);
    reclaimer.stop();
    await reconciler!.stop();
  });
  app.addSchema(ErrorBody);
  registerErrorHandling(app);
  const { leadership } = options;
  if (leadership) {
    // Between losing the lock and this app's close, nothing more is served as leader.
    app.addHook('onRequest', async (request) => {
      if (leadership.role() !== 'leader' && request.url.startsWith('/v1')) {
        throw notLeaderError(leadership.leaderUrl(), 'this controller is not the leader any more');
      }
    });
  }

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'crossdock controller', version: API_VERSION, description: 'IPAM and route distribution for Docker hosts connected by plain routing.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(websocket, { options: { maxPayload: MAX_AGENT_MESSAGE_BYTES } });
  await app.register(metricsPlugin, { version: API_VERSION, metricsToken: options.metricsToken });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  const storage = options.ipam.writer.storage;
  storage.logTo(app.log);
  const Health = Type.Object({
    status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
    role: Type.Union([Type.Literal('leader'), Type.Literal('standby')], {
      description: 'standbys (controllers waiting for the leader lock on a shared PostgreSQL) answer /v1 with 503 NOT_LEADER',
    }),
    leader: Type.Union([Type.String(), Type.Null()], { description: "the leader's advertised URL (this controller's own while it leads)" }),
    storage: Type.Object({
      status: Type.Union([Type.Literal('ok'), Type.Literal('unwritable')]),
      code: Type.Optional(Type.String({ description: 'DISK_FULL, READ_ONLY, IO_ERROR or CANNOT_OPEN' })),
      reason: Type.Optional(Type.String()),
      since: Type.Optional(Type.String({ format: 'date-time', description: 'the first failed write; cleared by the next write that succeeds' })),
    }),
  });
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness, and whether the database can be written',
        description: 'Answers 503 with status "degraded" while the last write to the database failed for a storage reason (a full disk, say).',
        security: [],
        response: { 200: Health, 503: Health },
      },
    },
    async (_request, reply) => {
      const state = storage.state();
      const role = leadership?.role() ?? 'leader';
      const leader = leadership ? leadership.leaderUrl() : (options.advertiseUrl ?? null);
      return reply.code(state.status === 'ok' ? 200 : 503).send({ status: state.status === 'ok' ? 'ok' : 'degraded', role, leader, storage: state });
    },
  );

  const adminTokenHash = hashToken(options.adminToken);
  const operatorRoutes: FastifyPluginAsync = async (v1) => {
    v1.addHook('onRequest', adminAuth(adminTokenHash));
    await v1.register(poolsRoutes, { prefix: '/pools' });
    await v1.register(hostsRoutes, { prefix: '/hosts', advertiseUrl: options.advertiseUrl });
    await v1.register(subnetsRoutes, { prefix: '/subnets' });
    await v1.register(jobsRoutes, { prefix: '/jobs' });
    await v1.register(statusRoutes, { prefix: '/status', version: API_VERSION });
    await v1.register(eventsRoutes, { prefix: '/events' });
    await v1.register(tlsRoutes, { prefix: '/tls' });
  };
  await app.register(operatorRoutes, { prefix: '/v1' });
  await app.register(agentRoutes, { prefix: '/v1/agent' });
  if (options.uiDir) await app.register(uiRoutes, { dir: options.uiDir });

  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;

/** A logger made outside (the server's, shared by every role's app) rather than logger options. */
function isLoggerInstance(logger: AppOptions['logger'] | FastifyBaseLogger | undefined): logger is FastifyBaseLogger {
  return typeof logger === 'object' && logger !== null && typeof (logger as FastifyBaseLogger).child === 'function';
}
