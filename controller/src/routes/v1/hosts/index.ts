import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { emptyObservedState, renderCommand } from '@crossdock/shared';
import { hashToken, newHostToken } from '../../../auth/tokens.ts';
import { ApiError, notFound } from '../../../errors.ts';
import { CA_FINGERPRINT_DESCRIPTION, JOIN_DESCRIPTION, joinFor } from '../../../join.ts';
import { DEFAULT_NETWORK_NAME } from '../../../ipam/ipam.ts';
import { requireDnsLabel, requireInterfaceName, requireLabels, requireUnicastAddress } from '../../../ipam/rules.ts';
import { Host, Labels, NameParams, commonErrors, itemsOf } from '../../../schemas.ts';
import { hostInclude, hostView } from '../../../views.ts';

const RegisterHost = Type.Object(
  {
    name: Type.String({ description: 'DNS label', examples: ['node-1'] }),
    address: Type.String({ description: "the host's unicast IPv4 address on the shared network", examples: ['192.168.32.20'] }),
    interface: Type.Optional(Type.String({ default: 'eth0', description: 'the interface that address is on' })),
    labels: Type.Optional(Labels),
    pool: Type.Optional(Type.String({ description: 'pool for the first subnet (default: "default")' })),
    allocate: Type.Optional(Type.Boolean({ default: true, description: 'allocate the first subnet now' })),
  },
  { additionalProperties: false },
);

const PatchHost = Type.Object(
  {
    address: Type.Optional(Type.String()),
    interface: Type.Optional(Type.String()),
    labels: Type.Optional(Labels),
  },
  { additionalProperties: false, minProperties: 1 },
);

export interface HostsRoutesOptions {
  /** the controller's URL as hosts reach it, for the join line (CROSSDOCK_ADVERTISE_URL) */
  advertiseUrl?: string;
}

const hosts: FastifyPluginAsyncTypebox<HostsRoutesOptions> = async (app, options) => {
  const { prisma, ipam, agents } = app;

  async function loadHost(name: string) {
    const row = await prisma.host.findUnique({ where: { name }, include: hostInclude });
    if (!row) throw notFound.host(name);
    return hostView(row, agents.hub, agents.reconciler.generationOf(row.id));
  }

  app.post(
    '/',
    {
      schema: {
        tags: ['hosts'],
        summary: 'Register a host (and allocate its first subnet)',
        body: RegisterHost,
        response: {
          201: Type.Object({
            host: Host,
            token: Type.String({ description: 'shown once' }),
            caFingerprint: Type.Union([Type.String(), Type.Null()], { description: CA_FINGERPRINT_DESCRIPTION }),
            join: Type.String({
              description: JOIN_DESCRIPTION,
              examples: ['node crossdock-executor.mjs install --controller https://192.168.32.5:7800 --token cdh_... --ca-fingerprint sha256:...'],
            }),
          }),
          ...commonErrors,
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const token = newHostToken();
      const input = {
        name: requireDnsLabel(body.name, 'host'),
        address: requireUnicastAddress(body.address),
        interface: requireInterfaceName(body.interface ?? 'eth0'),
        labels: requireLabels(body.labels ?? {}),
        tokenHash: hashToken(token),
      };
      if (body.allocate === false && body.pool !== undefined) {
        throw new ApiError('VALIDATION_FAILED', 'pool was given with allocate:false; drop one of them');
      }
      const firstSubnet = body.allocate === false ? null : { pool: body.pool, network: DEFAULT_NETWORK_NAME, mode: 'network' as const };
      // Registering with a first subnet is an allocation too, and is counted as one.
      if (firstSubnet) await app.metrics.timeAllocation(() => ipam.registerHost(input, firstSubnet));
      else await ipam.registerHost(input, null);
      const caFingerprint = app.tls?.material.caFingerprint;
      return reply.code(201).send({
        host: await loadHost(input.name),
        token,
        caFingerprint: caFingerprint ?? null,
        join: joinFor(request, options.advertiseUrl, token, caFingerprint),
      });
    },
  );

  app.get('/', { schema: { tags: ['hosts'], summary: 'List hosts', response: { 200: itemsOf(Host) } } }, async () => {
    const rows = await prisma.host.findMany({ include: hostInclude, orderBy: { id: 'asc' } });
    return { items: rows.map((r) => hostView(r, agents.hub, agents.reconciler.generationOf(r.id))) };
  });

  app.get(
    '/:name',
    { schema: { tags: ['hosts'], summary: 'Get a host, with how it reaches each peer', params: NameParams, response: { 200: Host, ...commonErrors } } },
    async (request) => {
      const host = await loadHost(request.params.name);
      return { ...host, peers: agents.reconciler.peersOf(host.id) };
    },
  );

  app.patch(
    '/:name',
    {
      schema: {
        tags: ['hosts'],
        summary: "Change a host's address, interface or labels",
        params: NameParams,
        body: PatchHost,
        response: { 200: Host, ...commonErrors },
      },
    },
    async (request) => {
      const { address, interface: iface, labels } = request.body;
      await ipam.updateHost(request.params.name, {
        address: address === undefined ? undefined : requireUnicastAddress(address),
        interface: iface === undefined ? undefined : requireInterfaceName(iface),
        labels: labels === undefined ? undefined : requireLabels(labels),
      });
      return loadHost(request.params.name);
    },
  );

  app.get(
    '/:name/plan',
    {
      schema: {
        tags: ['hosts'],
        summary: 'What the host would run now (dry run)',
        description:
          "Diffs the host's desired state against a fresh snapshot from its executor; a host with no executor attached is planned against an empty host.",
        params: NameParams,
        response: {
          200: Type.Object({
            generation: Type.Integer(),
            observed: Type.Union([Type.Literal('snapshot'), Type.Literal('none')], { description: 'what the plan was diffed against' }),
            commands: Type.Array(Type.Unknown()),
            script: Type.String({ description: 'the commands as an operator would type them' }),
            skipped: Type.Array(Type.String(), {
              description: 'observed things no valid command can name (a network called "a; b"): left alone, to fix by hand',
            }),
          }),
          ...commonErrors,
        },
      },
    },
    async (request) => {
      const host = await loadHost(request.params.name);
      const snapshot = await agents.reconciler.snapshot(host.id);
      const skipped: string[] = [];
      const commands = agents.reconciler.planFor(host.id, snapshot ?? emptyObservedState(), skipped) ?? [];
      return {
        generation: host.generation.desired,
        observed: snapshot ? ('snapshot' as const) : ('none' as const),
        commands,
        script: commands.map((c) => renderCommand(c)).join('\n'),
        skipped,
      };
    },
  );

  app.delete(
    '/:name',
    { schema: { tags: ['hosts'], summary: 'Delete a host and release its subnets', params: NameParams, response: { 204: Type.Null(), ...commonErrors } } },
    async (request, reply) => {
      await ipam.deleteHost(request.params.name);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/:name/token',
    {
      schema: {
        tags: ['hosts'],
        summary: "Rotate a host's token (the old one stops working)",
        params: NameParams,
        response: {
          200: Type.Object({
            token: Type.String(),
            caFingerprint: Type.Union([Type.String(), Type.Null()], { description: CA_FINGERPRINT_DESCRIPTION }),
            join: Type.String({ description: JOIN_DESCRIPTION }),
          }),
          ...commonErrors,
        },
      },
    },
    async (request) => {
      const token = newHostToken();
      await ipam.updateHostRow(request.params.name, (tx, id) =>
        tx.host.update({ where: { id }, data: { tokenHash: hashToken(token), updatedAt: new Date() } }),
      );
      app.events.emit('token.rotated', ipam.hostIdByName(request.params.name));
      const caFingerprint = app.tls?.material.caFingerprint;
      return { token, caFingerprint: caFingerprint ?? null, join: joinFor(request, options.advertiseUrl, token, caFingerprint) };
    },
  );
};

export default hosts;
