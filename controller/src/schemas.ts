// Response and shared schemas. The same TypeBox objects validate, serialize, type the
// handlers (Static<>) and produce the OpenAPI document.
import { Type, type Static } from '@sinclair/typebox';

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable SNAKE_CASE code' }),
      message: Type.String({ description: 'what was wrong and what would be right' }),
      leader: Type.Optional(
        Type.Union([Type.String(), Type.Null()], { description: "NOT_LEADER only: the leader's advertised URL, null while none is known" }),
      ),
    }),
  },
  { $id: 'Error' },
);

export const Labels = Type.Record(Type.String(), Type.String(), { description: 'string labels' });

export const Subnet = Type.Object({
  id: Type.Integer(),
  cidr: Type.String({ examples: ['10.100.0.0/24'] }),
  gateway: Type.String({ examples: ['10.100.0.1'] }),
  pool: Type.String(),
  host: Type.String(),
  network: Type.String({ description: 'Docker network name on the host; for mode "docker", docker/<cidr> (the network is named by whoever created it)' }),
  mode: Type.Union([Type.Literal('network'), Type.Literal('bip'), Type.Literal('docker')], {
    description:
      'network: a Docker network crossdock creates; bip: the engine default bridge; docker: a network Docker created with `--ipam-driver crossdock` (routed fleet-wide, never created or removed by crossdock)',
  }),
  createdAt: Type.String({ format: 'date-time' }),
});
export type SubnetDto = Static<typeof Subnet>;

export const HostStatus = Type.Union([Type.Literal('pending'), Type.Literal('online'), Type.Literal('offline')]);

export const Peer = Type.Object({
  host: Type.String(),
  address: Type.String(),
  onLink: Type.Union([Type.Boolean(), Type.Null()], {
    description: "the peer's address lies in a subnet of this host's interface, as its executor reported it; null until it reports",
  }),
  reach: Type.Union([Type.Literal('direct'), Type.Literal('vxlan'), Type.Literal('unreachable'), Type.Literal('mixed')], {
    description: "how this host reaches the peer's subnets: a direct route, through its VXLAN device, not at all, or differently per pool (mixed)",
  }),
  reason: Type.Optional(Type.String({ description: 'why some of its subnets are unreachable' })),
  applied: Type.Boolean({ description: "this host's executor reports its desired state, these entries included, in place" }),
});
export type PeerDto = Static<typeof Peer>;

export const Host = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  address: Type.String(),
  interface: Type.String(),
  labels: Labels,
  status: HostStatus,
  lastSeenAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  executor: Type.Union(
    [
      Type.Object({
        version: Type.String({ description: 'the executor release (`crossdock-executor --version`)', examples: ['0.1.0'] }),
        protocol: Type.Integer({ description: 'the protocol version it speaks' }),
      }),
      Type.Null(),
    ],
    {
      description:
        "what the host's executor said in its last hello to this controller process; null until it says hello (after a controller restart, until it reconnects)",
    },
  ),
  subnets: Type.Array(Subnet),
  generation: Type.Object({ desired: Type.Integer(), applied: Type.Integer() }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  peers: Type.Optional(Type.Array(Peer, { description: 'GET /v1/hosts/:name only: how this host reaches each other host' })),
});
export type HostDto = Static<typeof Host>;

export const Utilization = Type.Object({
  total: Type.Integer({ description: 'subnets of the pool size that fit in the pool' }),
  allocated: Type.Integer({ description: 'of those, blocks holding a subnet' }),
  free: Type.Integer({ description: 'of those, blocks free to allocate' }),
  reserved: Type.Integer({ description: 'of those, blocks touched by a reserved range' }),
});

export const Pool = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  cidr: Type.String(),
  subnetPrefixLength: Type.Integer(),
  reserved: Type.Array(Type.String()),
  allowFrom: Type.Array(Type.String(), { description: "outside networks whose traffic reaches the pool's subnets on every host" }),
  encapsulation: Type.Union([Type.Literal('never'), Type.Literal('crossSubnet'), Type.Literal('always')], {
    description: "when hosts reach this pool's subnets on a peer through VXLAN",
  }),
  mtu: Type.Union([Type.Integer(), Type.Null()], {
    description: "MTU of the pool's Docker networks; null: the underlay's less 50 where encapsulation is possible",
  }),
  createdAt: Type.String({ format: 'date-time' }),
});
export type PoolDto = Static<typeof Pool>;

export const PoolWithUtilization = Type.Composite([Pool, Type.Object({ utilization: Utilization })]);

export const NameParams = Type.Object({ name: Type.String() });
export const MAX_ROW_ID = 2 ** 31 - 1;
// Ids are SQLite/Prisma Int (32-bit): a larger one would reach Prisma and fail as a 500.
// plugins/validation.ts checks the coerced value against this range.
export const IdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: MAX_ROW_ID }) });

export function itemsOf<T extends Parameters<typeof Type.Array>[0]>(item: T) {
  return Type.Object({ items: Type.Array(item) });
}

/** Error responses every authenticated route can give, for the OpenAPI document. */
export const commonErrors = {
  400: Type.Ref('Error'),
  401: Type.Ref('Error'),
  404: Type.Ref('Error'),
  409: Type.Ref('Error'),
} as const;
