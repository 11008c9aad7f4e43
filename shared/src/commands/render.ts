// Text renderings of commands: what an operator would type, and the exact input the executor
// feeds to `ip -batch` and `iptables-restore`. renderRule must match iptables-save byte for
// byte: the planner compares observed chain lines with rendered ones by string equality.
import {
  CROSSDOCK_ROUTE_PROTOCOL,
  MANAGED_LABEL,
  type Command,
  type DockerNetworkCreate,
  type FirewallChain,
  type FirewallRule,
  type FirewallTable,
  type RouteDelete,
  type RouteReplace,
  type VxlanCommand,
  VXLAN_DEVICE_ALIAS,
} from './schema.ts';

/** One rule as `iptables-save` prints it (field order -s -d -i -o -m comment -j, as it does). */
export function renderRule(chain: string, rule: FirewallRule): string {
  const parts = ['-A', chain];
  if (rule.source !== undefined) parts.push('-s', rule.source);
  if (rule.destination !== undefined) parts.push('-d', rule.destination);
  if (rule.inInterface !== undefined) parts.push('-i', rule.inInterface);
  if (rule.outInterface !== undefined) parts.push('-o', rule.outInterface);
  if (rule.protocol !== undefined && rule.dport !== undefined) parts.push('-p', rule.protocol, '-m', rule.protocol, '--dport', String(rule.dport));
  if (rule.comment !== undefined) parts.push('-m', 'comment', '--comment', quoteForIptablesSave(rule.comment));
  parts.push('-j', rule.target);
  return parts.join(' ');
}

/** xtables_save_string: bare when only [A-Za-z0-9_-], else double-quoted with " \ ' escaped. */
function quoteForIptablesSave(text: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(text)) return text;
  return `"${text.replace(/["\\']/g, (c) => `\\${c}`)}"`;
}

/**
 * The iptables-restore --noflush input replacing each chain whole: declare (creates it if
 * missing), flush, append every rule, all in one COMMIT so no packet sees a half-built chain.
 */
export function renderRestore(table: FirewallTable, chains: readonly Pick<FirewallChain, 'chain' | 'rules'>[]): string {
  const lines = [`*${table}`];
  for (const { chain } of chains) lines.push(`:${chain} - [0:0]`);
  for (const { chain, rules } of chains) {
    lines.push(`-F ${chain}`);
    for (const rule of rules) lines.push(renderRule(chain, rule));
  }
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/** One line of `ip -batch -` input (no leading "ip"). Deletes name our protocol so only our routes go. */
export function renderIpBatchLine(c: RouteReplace | RouteDelete): string {
  return c.kind === 'route.replace'
    ? `route replace ${c.dst} via ${c.via} dev ${c.dev} proto ${CROSSDOCK_ROUTE_PROTOCOL}`
    : `route delete ${c.dst} proto ${CROSSDOCK_ROUTE_PROTOCOL}`;
}

export function renderIpBatch(commands: readonly (RouteReplace | RouteDelete)[]): string {
  return commands.map((c) => `${renderIpBatchLine(c)}\n`).join('');
}

/**
 * The `ip -batch -` lines of a VXLAN command (the device takes three: create, settings, address;
 * an existing device only the last two), or null for a forwarding-database command, which is
 * `bridge`'s (renderBridgeBatchLine).
 */
export function renderVxlanIpLines(c: VxlanCommand, create = true): string[] | null {
  switch (c.kind) {
    case 'vxlan.device':
      return [
        ...(create ? [`link add ${c.name} type vxlan id ${c.vni} local ${c.local} dstport ${c.port} nolearning`] : []),
        `link set dev ${c.name} address ${c.mac} mtu ${c.mtu} alias ${VXLAN_DEVICE_ALIAS} up`,
        `address replace ${c.address} dev ${c.name}`,
      ];
    case 'vxlan.device.delete':
      return [`link delete ${c.name}`];
    case 'neigh.replace':
      return [`neigh replace ${c.address} lladdr ${c.mac} dev ${c.dev} nud permanent`];
    case 'neigh.delete':
      return [`neigh delete ${c.address} dev ${c.dev}`];
    case 'fdb.replace':
    case 'fdb.delete':
      return null;
  }
}

/** One line of `bridge -batch -` input for a forwarding-database command. */
export function renderBridgeBatchLine(c: Extract<VxlanCommand, { kind: 'fdb.replace' | 'fdb.delete' }>): string {
  return c.kind === 'fdb.replace' ? `fdb replace ${c.mac} dev ${c.dev} dst ${c.dst} self permanent` : `fdb delete ${c.mac} dev ${c.dev} self`;
}

/** The labels a network is created with: the command's own plus the managed label. */
export function networkLabels(c: DockerNetworkCreate): Record<string, string> {
  return { ...c.labels, [MANAGED_LABEL]: 'true' };
}

/**
 * What an operator would type to do the same by hand. Every word that comes from a command is
 * shell-quoted: a command that reaches this function unvalidated (a stored job, a plan) still
 * renders as one harmless line per word.
 */
export function renderCommand(c: Command): string {
  switch (c.kind) {
    case 'route.replace':
      return shellWords(['ip', 'route', 'replace', c.dst, 'via', c.via, 'dev', c.dev, 'proto', String(CROSSDOCK_ROUTE_PROTOCOL)]);
    case 'route.delete':
      return shellWords(['ip', 'route', 'delete', c.dst, 'proto', String(CROSSDOCK_ROUTE_PROTOCOL)]);
    case 'firewall.chain':
      // iptables-restore input, not shell: each rule line as iptables-save prints it.
      return renderRestore(c.table, [c]).trimEnd();
    case 'firewall.jump':
      return shellWords(['iptables', '-t', c.table, '-I', c.from, String(c.position), '-j', c.to]);
    case 'docker.network.create': {
      const words = ['docker', 'network', 'create', '--driver', 'bridge', '--subnet', c.subnet, '--gateway', c.gateway];
      for (const [key, value] of sortedEntries(c.options)) words.push('--opt', `${key}=${value}`);
      for (const [key, value] of sortedEntries(networkLabels(c))) words.push('--label', `${key}=${value}`);
      return shellWords([...words, ...endOfOptions(c.name), c.name]);
    }
    case 'docker.network.remove':
      return shellWords(['docker', 'network', 'rm', ...endOfOptions(c.name), c.name]);
    case 'docker.daemon.bip':
      return `daemon.json: "bip": ${jsonShellWord(c.bip)} + restart dockerd`;
    case 'sysctl.set':
      return shellWords(['sysctl', '-w', `${c.key}=${c.value}`]);
    case 'fdb.replace':
    case 'fdb.delete':
      return shellWords(['bridge', ...renderBridgeBatchLine(c).split(' ')]);
    case 'vxlan.device':
    case 'vxlan.device.delete':
    case 'neigh.replace':
    case 'neigh.delete':
      // Each line as an operator would type it, every word quoted where it needs to be.
      return (renderVxlanIpLines(c) ?? []).map((line) => shellWords(['ip', ...line.split(' ')])).join('\n');
  }
}

const shellWords = (words: readonly string[]) => words.map(shellQuote).join(' ');

/** A name starting with "-" would be read as an option. */
const endOfOptions = (name: string) => (name.startsWith('-') ? ['--'] : []);

/** A JSON string value that is also inert in a shell: bare "..." when that is safe, else single-quoted. */
function jsonShellWord(text: string): string {
  return SAFE_WORD.test(text) ? `"${text}"` : shellQuote(JSON.stringify(text));
}

const sortedEntries = (map: Record<string, string>) => Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

// Characters no POSIX shell treats specially, bare or inside double quotes.
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote for a POSIX shell only when needed, so ordinary words stay readable. */
export function shellQuote(word: string): string {
  if (SAFE_WORD.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
