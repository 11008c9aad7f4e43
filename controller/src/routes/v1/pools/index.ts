import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { notFound } from '../../../errors.ts';
import { ApiError } from '../../../errors.ts';
import { MAX_ALLOW_FROM, requireAllowFrom, requireCidr, requireDnsLabel, requireEncapsulation, requirePoolMtu, requirePoolRange } from '../../../ipam/rules.ts';
import { NameParams, Pool, PoolWithUtilization, commonErrors, itemsOf } from '../../../schemas.ts';
import { poolView } from '../../../views.ts';

const MAX_AVAILABLE_LIMIT = 1000;

const AllowFrom = Type.Array(Type.String(), {
  description:
    "networks outside the fleet whose traffic may reach the pool's subnets on every host (default none); this opens the containers to them, as a published port would",
  examples: [['192.0.2.0/24']],
  maxItems: MAX_ALLOW_FROM,
});

const Encapsulation = Type.String({
  description:
    'when a host reaches this pool\'s subnets on a peer through VXLAN: "never" (direct routes only; a peer off-link is unreachable), "crossSubnet" (only peers whose address is not on-link, the default) or "always"',
  examples: ['crossSubnet'],
  maxLength: 32,
});

const Mtu = Type.Union([Type.Integer(), Type.Null()], {
  description: "MTU of the pool's Docker networks at creation; null (the default): the host interface's MTU less 50 where encapsulation is possible",
  examples: [1450],
});

const CreatePool = Type.Object(
  {
    name: Type.String({ description: 'DNS label', examples: ['default'] }),
    cidr: Type.String({ examples: ['10.100.0.0/16'] }),
    subnetPrefixLength: Type.Optional(Type.Integer({ default: 24, description: 'size of the subnets handed out' })),
    reserved: Type.Optional(Type.Array(Type.String(), { description: 'ranges never allocated', maxItems: 1024 })),
    allowFrom: Type.Optional(AllowFrom),
    encapsulation: Type.Optional(Encapsulation),
    mtu: Type.Optional(Mtu),
  },
  { additionalProperties: false },
);

const UpdatePool = Type.Object(
  { allowFrom: Type.Optional(AllowFrom), encapsulation: Type.Optional(Encapsulation), mtu: Type.Optional(Mtu) },
  { additionalProperties: false },
);

const pools: FastifyPluginAsyncTypebox = async (app) => {
  const { prisma, ipam } = app;

  async function loadPool(name: string) {
    const row = await prisma.pool.findUnique({ where: { name }, include: { reserved: { orderBy: { id: 'asc' } } } });
    if (!row) throw notFound.pool(name);
    return row;
  }

  app.post(
    '/',
    { schema: { tags: ['pools'], summary: 'Create a pool', body: CreatePool, response: { 201: Pool, ...commonErrors } } },
    async (request, reply) => {
      const { name, cidr, subnetPrefixLength = 24, reserved = [], allowFrom = [], encapsulation = 'crossSubnet', mtu = null } = request.body;
      requireDnsLabel(name, 'pool');
      const pool = requirePoolRange(cidr, 'cidr');
      const ranges = reserved.map((r, i) => requireCidr(r, `reserved[${i}]`));
      const allowed = requireAllowFrom(allowFrom);
      const created = await ipam.createPool({
        name,
        cidr: pool,
        subnetPrefixLength,
        reserved: ranges,
        allowFrom: allowed,
        encapsulation: requireEncapsulation(encapsulation),
        mtu: requirePoolMtu(mtu),
      });
      return reply.code(201).send(poolView(created));
    },
  );

  app.patch(
    '/:name',
    {
      schema: {
        tags: ['pools'],
        summary: "Change a pool's allowFrom networks (every host's firewall follows), encapsulation or MTU (every host is replanned)",
        params: NameParams,
        body: UpdatePool,
        response: { 200: Pool, ...commonErrors },
      },
    },
    async (request) => {
      const { allowFrom, encapsulation, mtu } = request.body;
      if (allowFrom === undefined && encapsulation === undefined && mtu === undefined) {
        throw new ApiError('VALIDATION_FAILED', 'nothing to change; give allowFrom, encapsulation or mtu');
      }
      const updated = await ipam.updatePool(request.params.name, {
        ...(allowFrom === undefined ? {} : { allowFrom: requireAllowFrom(allowFrom) }),
        ...(encapsulation === undefined ? {} : { encapsulation: requireEncapsulation(encapsulation) }),
        ...(mtu === undefined ? {} : { mtu: requirePoolMtu(mtu) }),
      });
      return poolView(updated);
    },
  );

  app.get('/', { schema: { tags: ['pools'], summary: 'List pools', response: { 200: itemsOf(Pool) } } }, async () => {
    const rows = await prisma.pool.findMany({ include: { reserved: { orderBy: { id: 'asc' } } }, orderBy: { id: 'asc' } });
    return { items: rows.map(poolView) };
  });

  app.get(
    '/:name',
    { schema: { tags: ['pools'], summary: 'Get a pool and its utilization', params: NameParams, response: { 200: PoolWithUtilization, ...commonErrors } } },
    async (request) => {
      const row = await loadPool(request.params.name);
      return { ...poolView(row), utilization: ipam.utilization(row.name) };
    },
  );

  app.get(
    '/:name/available',
    {
      schema: {
        tags: ['pools'],
        summary: 'Preview the next free subnets (nothing is reserved)',
        params: NameParams,
        querystring: Type.Object(
          {
            prefixLength: Type.Optional(Type.Integer({ minimum: 0, maximum: 32 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_AVAILABLE_LIMIT, default: 10 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ pool: Type.String(), prefixLength: Type.Integer(), items: Type.Array(Type.String()) }), ...commonErrors },
      },
    },
    async (request) => {
      const pool = await loadPool(request.params.name);
      const prefixLength = request.query.prefixLength ?? pool.subnetPrefixLength;
      return { pool: pool.name, prefixLength, items: ipam.available(pool.name, prefixLength, request.query.limit ?? 10) };
    },
  );

  app.delete(
    '/:name',
    { schema: { tags: ['pools'], summary: 'Delete an empty pool', params: NameParams, response: { 204: Type.Null(), ...commonErrors } } },
    async (request, reply) => {
      await ipam.deletePool(request.params.name);
      return reply.code(204).send(null);
    },
  );
};

export default pools;
