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
  };
}
