// What an executor observes on its host, as it reports it. Only crossdock's own things are
// reported in detail (its route protocol, its chains, its labelled networks); the rest is
// context the planner needs (which chains exist, the engine version, interfaces).
import { Type, type Static } from '@sinclair/typebox';

const MAX_ROUTES = 200_000;
const MAX_ITEMS = 10_000;

export const ObservedRoute = Type.Object({ dst: Type.String(), via: Type.String(), dev: Type.String() }, { additionalProperties: false });
export type ObservedRoute = Static<typeof ObservedRoute>;

export const ObservedChain = Type.Object(
  {
    table: Type.Union([Type.Literal('filter'), Type.Literal('nat')]),
    name: Type.String(),
    /** rules as iptables-save prints them (`-A CROSSDOCK-FORWARD -s ... -j ACCEPT`) */
    rules: Type.Array(Type.String(), { maxItems: MAX_ITEMS }),
  },
  { additionalProperties: false },
);
export type ObservedChain = Static<typeof ObservedChain>;

export const ObservedJump = Type.Object(
  { table: Type.String(), from: Type.String(), to: Type.String(), position: Type.Integer({ minimum: 1 }) },
  { additionalProperties: false },
);
export type ObservedJump = Static<typeof ObservedJump>;

export const ObservedNetwork = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    subnet: Type.Union([Type.String(), Type.Null()]),
    gateway: Type.Union([Type.String(), Type.Null()]),
    labels: Type.Record(Type.String(), Type.String()),
    containers: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type ObservedNetwork = Static<typeof ObservedNetwork>;

/** crossdock's VXLAN device (by its name), as the kernel has it; absent: no such device. */
export const ObservedVxlanDevice = Type.Object(
  {
    name: Type.String(),
    /** ifalias; a device of crossdock's name whose alias is not crossdock's was not made by it */
    alias: Type.Union([Type.String(), Type.Null()]),
    /** null: a device of that name that is not a VXLAN device */
    vni: Type.Union([Type.Integer(), Type.Null()]),
    port: Type.Union([Type.Integer(), Type.Null()]),
    local: Type.Union([Type.String(), Type.Null()]),
    learning: Type.Boolean(),
    mac: Type.String(),
    mtu: Type.Integer(),
    up: Type.Boolean(),
    /** IPv4 address/prefix */
    addresses: Type.Array(Type.String(), { maxItems: 64 }),
  },
  { additionalProperties: false },
);
export type ObservedVxlanDevice = Static<typeof ObservedVxlanDevice>;

export const ObservedVxlan = Type.Object(
  {
    device: Type.Union([ObservedVxlanDevice, Type.Null()]),
    /** permanent neighbour entries of the device */
    neighbours: Type.Array(Type.Object({ address: Type.String(), mac: Type.String() }, { additionalProperties: false }), { maxItems: MAX_ROUTES }),
    /** permanent forwarding-database entries of the device that send to a remote address */
    fdb: Type.Array(Type.Object({ mac: Type.String(), dst: Type.String() }, { additionalProperties: false }), { maxItems: MAX_ROUTES }),
  },
  { additionalProperties: false },
);
export type ObservedVxlan = Static<typeof ObservedVxlan>;

export const ObservedState = Type.Object(
  {
    routes: Type.Array(ObservedRoute, { maxItems: MAX_ROUTES }),
    firewall: Type.Object(
      {
        backend: Type.Union([Type.Literal('nf_tables'), Type.Literal('legacy'), Type.Literal('unknown')]),
        chains: Type.Array(ObservedChain, { maxItems: MAX_ITEMS }),
        jumps: Type.Array(ObservedJump, { maxItems: MAX_ITEMS }),
        /** which of DOCKER-USER, FORWARD, POSTROUTING exist, as "table/chain" */
        builtinChains: Type.Array(Type.String(), { maxItems: 16 }),
        forwardPolicy: Type.Union([Type.String(), Type.Null()]),
        /** INPUT's policy; optional: executors before VXLAN did not report it */
        inputPolicy: Type.Optional(Type.Union([Type.String(), Type.Null()])),
      },
      { additionalProperties: false },
    ),
    docker: Type.Object(
      {
        available: Type.Boolean(),
        version: Type.Union([Type.String(), Type.Null()]),
        networks: Type.Array(ObservedNetwork, { maxItems: MAX_ITEMS }),
        bip: Type.Union([Type.String(), Type.Null()]),
        error: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
    interfaces: Type.Array(Type.Object({ name: Type.String(), mtu: Type.Integer(), addresses: Type.Array(Type.String()) }, { additionalProperties: false }), {
      maxItems: MAX_ITEMS,
    }),
    sysctl: Type.Record(Type.String(), Type.String()),
    /** crossdock's VXLAN device and its entries; optional: executors before VXLAN did not report it */
    vxlan: Type.Optional(ObservedVxlan),
  },
  { additionalProperties: false },
);
export type ObservedState = Static<typeof ObservedState>;

export function emptyObservedState(): ObservedState {
  return {
    routes: [],
    firewall: { backend: 'unknown', chains: [], jumps: [], builtinChains: [], forwardPolicy: null },
    docker: { available: false, version: null, networks: [], bip: null },
    interfaces: [],
    sysctl: {},
    vxlan: { device: null, neighbours: [], fdb: [] },
  };
}
