// Response and shared schemas. The same TypeBox objects validate, serialize, type the
// handlers (Static<>) and produce the OpenAPI document.
import { Type, type Static } from '@sinclair/typebox';

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable SNAKE_CASE code' }),
      message: Type.String({ description: 'what was wrong and what would be right' }),
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
