// Errors: a command returns a CommandResult and never throws (ok false, stderr says why); an observation throws.
//
// The only code that touches the host. Each driver: an interface, a real implementation, and an
// in-memory fake with the same semantics (import those from ./fake.ts).
export * from './run.ts';
export * from './ip.ts';
export * from './vxlan.ts';
export * from './iptables.ts';
export * from './docker.ts';
export * from './sysctl.ts';
export * from './systemd.ts';
