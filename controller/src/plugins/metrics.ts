// GET /metrics in the Prometheus text format, open unless a metrics token is configured
// (then "Authorization: Bearer <metrics token>", as Prometheus' `authorization` sends it).
// Also decorates the app with the fleet summary (GET /v1/status) and the metrics recorder.
import fp from 'fastify-plugin';
import type { FastifyPluginAsync } from 'fastify';
import { bearerToken, hashToken, tokenMatches } from '../auth/tokens.ts';
import { ApiError } from '../errors.ts';
import { FleetStatus } from '../fleet-status.ts';
import { ControllerMetrics } from '../metrics.ts';

declare module 'fastify' {
  interface FastifyInstance {
    fleetStatus: FleetStatus;
    metrics: ControllerMetrics;
  }
}

export interface MetricsOptions {
  version: string;
  /** undefined: /metrics needs no token */
  metricsToken?: string;
}

const metrics: FastifyPluginAsync<MetricsOptions> = async (app, options) => {
  const { hub, reconciler, fleet, jobs, admission } = app.agents;
  const status = await FleetStatus.load({ prisma: app.prisma, fleet, hub, reconciler, ipam: app.ipam });
  const recorder = new ControllerMetrics({ status, jobEvents: jobs.events, version: options.version, admission });
  app.decorate('fleetStatus', status);
  app.decorate('metrics', recorder);
  app.addHook('onClose', async () => recorder.close());

  const tokenHash = options.metricsToken === undefined ? undefined : hashToken(options.metricsToken);
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics (text format)',
        description: 'No token needed unless the controller was started with a metrics token (CROSSDOCK_METRICS_TOKEN); then send it as a bearer token.',
        security: [],
        produces: ['text/plain'],
      },
    },
    async (request, reply) => {
      if (tokenHash !== undefined) {
        const token = bearerToken(request.headers.authorization);
        if (!token || !tokenMatches(token, tokenHash)) {
          throw new ApiError(
            'UNAUTHORIZED',
            `${token ? 'the metrics token is wrong' : 'missing metrics token'}; send "Authorization: Bearer <metrics token>" (the controller's CROSSDOCK_METRICS_TOKEN)`,
          );
        }
      }
      const body = await recorder.registry.metrics();
      return reply.type(recorder.registry.contentType).send(body);
    },
  );
};

export default fp(metrics, { name: 'crossdock-metrics' });
