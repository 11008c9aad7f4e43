// Subnets a host asks for itself: its executor's Docker IPAM plugin (`docker network create
// --ipam-driver crossdock`). Registered inside the agent plugin, so the host token is checked
// before anything is read, and a host can only allocate and release for itself. The subnet is
// recorded in mode "docker": routed on every other host like the host's own networks, but
// Docker owns the network, so crossdock never creates or removes it.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { formatCidr } from '@crossdock/shared';
import { ApiError, notFound } from '../../../errors.ts';
import { dockerOwnedNetworkName } from '../../../ipam/ipam.ts';
import { requireCidr } from '../../../ipam/rules.ts';
import { IdParams, Subnet, commonErrors } from '../../../schemas.ts';
import { subnetInclude, subnetView } from '../../../views.ts';

const RequestDockerSubnet = Type.Object(
  {
    pool: Type.Optional(Type.String({ description: 'default: the pool containing cidr, else "default"' })),
    prefixLength: Type.Optional(Type.Integer({ description: "default: the pool's subnet length" })),
    cidr: Type.Optional(Type.String({ description: 'this exact block (docker network create --subnet)' })),
  },
  { additionalProperties: false },
);

const agentSubnets: FastifyPluginAsyncTypebox = async (app) => {
  const { prisma, ipam } = app;

  app.post('/', { schema: { hide: true, body: RequestDockerSubnet, response: { 200: Subnet, 201: Subnet, ...commonErrors } } }, async (request, reply) => {
    const host = request.agentHost!;
    const { pool, prefixLength } = request.body;
    const cidr = request.body.cidr === undefined ? undefined : requireCidr(request.body.cidr, 'cidr');
    // The same block asked again by the host holding it for Docker (a reply lost on the way, an
    // executor that lost its state file): it is still the host's, and answered as such.
    if (cidr) {
      const held = ipam.fleet.subnetOfNetwork(host.id, dockerOwnedNetworkName(formatCidr(cidr)));
      const row = held === undefined ? null : await prisma.subnet.findUnique({ where: { id: held }, include: subnetInclude });
      if (row) return reply.code(200).send(subnetView(row));
    }
    const created = await app.metrics.timeAllocation(() => ipam.allocate(host.name, { pool, prefixLength, cidr, network: '', mode: 'docker' }));
    request.log.info({ host: host.name, subnet: created.cidr, pool: created.pool.name }, 'subnet allocated for a Docker network');
    return reply.code(201).send(subnetView(created));
  });

  app.delete(
    '/:id',
    { schema: { hide: true, params: IdParams, response: { 204: Type.Null(), 403: Type.Ref('Error'), ...commonErrors } } },
    async (request, reply) => {
      const host = request.agentHost!;
      const place = ipam.fleet.subnet(request.params.id);
      // Another host's subnet is "not found" to this one, as with jobs.
      if (!place || place.hostId !== host.id) throw notFound.subnet(request.params.id);
      if (place.subnet.mode !== 'docker') {
        throw new ApiError(
          'FORBIDDEN',
          `subnet ${request.params.id} (${place.subnet.cidr}) was allocated by an operator for network "${place.subnet.network}", not by Docker; an operator releases it with DELETE /v1/subnets/${request.params.id}`,
        );
      }
      await ipam.releaseSubnet(request.params.id);
      request.log.info({ host: host.name, subnet: place.subnet.cidr }, 'subnet of a Docker network released');
      return reply.code(204).send(null);
    },
  );
};

export default agentSubnets;
