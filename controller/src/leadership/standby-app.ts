// What a standby serves: /healthz saying it is a standby and naming the leader, and 503
// NOT_LEADER (naming the leader) for everything else, the executors' WebSocket upgrade
// included. It loads no state and opens nothing: it only waits for the leader lock.
import Fastify, { type FastifyBaseLogger, type FastifyReply, type FastifyServerOptions } from 'fastify';
import { notLeaderError, type Leadership } from './leadership.ts';

/** How soon a client may try again; an election takes about a second once the leader is gone. */
const RETRY_AFTER_S = 1;

export async function buildStandbyApp(options: {
  leadership: Leadership;
  logger: FastifyBaseLogger;
  /** the HTTPS server (server.ts), as the leader's app has it */
  serverFactory?: FastifyServerOptions['serverFactory'] | undefined;
}) {
  const { leadership } = options;
  // Nothing a standby answers is worth waiting for at a takeover: close cuts its connections.
  // Its own request log stays quiet (warn): every client of the fleet may knock meanwhile.
  const app = Fastify({
    loggerInstance: options.logger.child({}, { level: 'warn' }),
    forceCloseConnections: true,
    ...(options.serverFactory ? { serverFactory: options.serverFactory } : {}),
  });
  app.get('/healthz', async () => ({ status: 'ok', role: 'standby', leader: leadership.leaderUrl() }));
  const refer = async (_request: unknown, reply: FastifyReply) => {
    const error = notLeaderError(leadership.leaderUrl());
    return reply
      .code(error.statusCode)
      .header('retry-after', String(RETRY_AFTER_S))
      .send({ error: { code: error.code, message: error.message, ...error.extra } });
  };
  app.setNotFoundHandler(refer);
  // A body that does not parse is still no reason to answer anything but "go to the leader".
  app.setErrorHandler((_error, request, reply) => refer(request, reply));
  return app;
}
