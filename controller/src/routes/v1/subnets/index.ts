import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { notFound } from '../../../errors.ts';
import { DEFAULT_NETWORK_NAME } from '../../../ipam/ipam.ts';
import { requireCidr, requireNetworkName } from '../../../ipam/rules.ts';
import { IdParams, Subnet, commonErrors, itemsOf } from '../../../schemas.ts';
import { subnetInclude, subnetView } from '../../../views.ts';

const AllocateSubnet = Type.Object(
  {
    host: Type.String({ description: 'name of a registered host' }),
    pool: Type.Optional(Type.String({ description: 'default: the pool containing cidr, else "default"' })),
    prefixLength: Type.Optional(Type.Integer({ description: "default: the pool's subnet length" })),
    cidr: Type.Optional(Type.String({ description: 'ask for this exact block' })),
    gateway: Type.Optional(Type.String({ description: 'default: the first host address' })),
    network: Type.Optional(Type.String({ default: DEFAULT_NETWORK_NAME, description: 'Docker network name on the host' })),
    mode: Type.Optional(Type.Union([Type.Literal('network'), Type.Literal('bip')], { default: 'network' })),
  },
  { additionalProperties: false },
);

const subnets: FastifyPluginAsyncTypebox = async (app) => {
  const { prisma, ipam } = app;

  app.post(
    '/',
    { schema: { tags: ['subnets'], summary: 'Allocate a subnet to a host', body: AllocateSubnet, response: { 201: Subnet, ...commonErrors } } },
    async (request, reply) => {
      const body = request.body;
      const created = await app.metrics.timeAllocation(() =>
        ipam.allocate(body.host, {
          pool: body.pool,
          prefixLength: body.prefixLength,
          cidr: body.cidr === undefined ? undefined : requireCidr(body.cidr, 'cidr'),
          gateway: body.gateway,
          network: requireNetworkName(body.network ?? DEFAULT_NETWORK_NAME),
          mode: body.mode ?? 'network',
        }),
      );
      return reply.code(201).send(subnetView(created));
    },
  );

  app.get(
    '/',
    {
      schema: {
        tags: ['subnets'],
        summary: 'List subnets',
        querystring: Type.Object({ host: Type.Optional(Type.String()), pool: Type.Optional(Type.String()) }, { additionalProperties: false }),
        response: { 200: itemsOf(Subnet), ...commonErrors },
      },
    },
    async (request) => {
      const { host, pool } = request.query;
      if (host !== undefined && ipam.hostIdByName(host) === undefined) {
        throw notFound.host(host);
      }
      if (pool !== undefined && !ipam.hasPool(pool)) {
        throw notFound.pool(pool);
      }
      const rows = await prisma.subnet.findMany({
        where: { host: host === undefined ? undefined : { name: host }, pool: pool === undefined ? undefined : { name: pool } },
        include: subnetInclude,
        orderBy: { id: 'asc' },
      });
      return { items: rows.map(subnetView) };
    },
  );

  app.get('/:id', { schema: { tags: ['subnets'], summary: 'Get a subnet', params: IdParams, response: { 200: Subnet, ...commonErrors } } }, async (request) => {
    const row = await prisma.subnet.findUnique({ where: { id: request.params.id }, include: subnetInclude });
    if (!row) throw notFound.subnet(request.params.id);
    return subnetView(row);
  });

  app.delete(
    '/:id',
    { schema: { tags: ['subnets'], summary: 'Release a subnet', params: IdParams, response: { 204: Type.Null(), ...commonErrors } } },
    async (request, reply) => {
      await ipam.releaseSubnet(request.params.id);
      return reply.code(204).send(null);
    },
  );
};

export default subnets;
