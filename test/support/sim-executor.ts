// A simulated executor (the convergence benchmark, the storm test): a real WebSocket client speaking the
// real protocol, keeping its host state in memory, answering every job at once. It keeps the
// digest of what it "has" incrementally, exactly as a real executor would compute it from
// the host, so the controller sees it in sync.
import WebSocket from 'ws';
import {
  INITIAL_SYNC_HEADER,
  INITIAL_SYNC_VALUE,
  PROTOCOL_VERSION,
  addHash,
  digestItem,
  emptyObservedState,
  formatDigest,
  itemHash,
  observedItems,
  parseControllerMessage,
  renderRule,
  subtractHash,
  VXLAN_DEVICE_ALIAS,
  type Command,
  type ObservedState,
} from '@crossdock/shared';

export interface JobReport {
  jobId: number;
  reason?: string;
  sentAt: number;
}

export class SimExecutor {
  private socket: WebSocket | undefined;
  private readonly state: ObservedState = emptyObservedState();
  private sum = 0;
  private readonly routes = new Map<string, string>(); // dst -> digest item
  readonly jobs: JobReport[] = [];
  onJob: ((report: JobReport, commands: Command[]) => void) | undefined;

  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly token: string,
    /** the host's address on eth0 with its prefix (10.0.0.5/16): hosts whose addresses share a prefix are on one link, reached by plain routes, no overlay */
    underlay?: string,
  ) {
    this.state.docker = { available: true, version: '20.10.24', networks: [], bip: '172.17.0.1/16' };
    this.state.firewall = {
      backend: 'nf_tables',
      chains: [],
      jumps: [],
      builtinChains: ['filter/DOCKER-USER', 'filter/FORWARD', 'nat/POSTROUTING'],
      forwardPolicy: 'DROP',
    };
    this.state.sysctl = { 'net.ipv4.ip_forward': '0' };
    this.state.interfaces = [{ name: 'eth0', mtu: 1500, addresses: underlay ? [underlay] : [] }];
    for (const item of observedItems(this.state)) this.sum = addHash(this.sum, itemHash(item));
  }

  /**
   * Opens the connection and says hello, after any 503 CONTROLLER_BUSY it is told to wait out.
   * With a gate, the first attempt's outcome (open, or told to come back) is announced through
   * `attempted`, and an open connection says hello only once `hello` resolves: a fleet can so
   * have every connection in before the first hello, a storm at its worst.
   */
  connect(gate?: { attempted: () => void; hello: Promise<void> }): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`${this.url.replace(/^http/, 'ws')}/v1/agent`, {
        // As the real executor: until its first hello it is a newcomer, if the controller agrees.
        headers: { authorization: `Bearer ${this.token}`, ...(this.saidHello ? {} : { [INITIAL_SYNC_HEADER]: INITIAL_SYNC_VALUE }) },
        perMessageDeflate: false,
      });
      this.socket = socket;
      socket.once('open', () => {
        gate?.attempted();
        void (gate?.hello ?? Promise.resolve()).then(() => {
          this.send({
            type: 'hello',
            protocol: PROTOCOL_VERSION,
            executorVersion: 'bench',
            hostname: this.name,
            state: this.snapshot(),
            digest: formatDigest(this.sum),
          });
          this.saidHello = true;
          resolve();
        });
      });
      socket.once('error', reject);
      // A controller syncing others says when to come back, as it does to a real executor;
      // the real executor's jitter on top (up to a second).
      socket.once('unexpected-response', (_request, response) => {
        const retryAfterS = Number(response.headers['retry-after']);
        response.resume();
        // Aborting a handshake emits an error of its own: this attempt is over, not failed.
        socket.removeListener('error', reject);
        socket.on('error', () => {});
        socket.terminate();
        if (response.statusCode !== 503 || !Number.isInteger(retryAfterS)) {
          reject(new Error(`${this.name}: the controller answered ${response.statusCode}`));
          return;
        }
        this.refusals++;
        gate?.attempted();
        setTimeout(() => this.connect().then(resolve, reject), retryAfterS * 1000 + Math.min(retryAfterS * 1000, 1_000) * Math.random());
      });
      socket.on('message', (data) => this.receive(data.toString()));
    });
  }

  private saidHello = false;

  /** times the controller said to come back later (503 CONTROLLER_BUSY) */
  refusals = 0;

  close(): void {
    this.socket?.close();
  }

  /** Only on an open socket: a message of a connection being replaced is dropped, as a real executor's would be. */
  private send(message: unknown): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private snapshot(): ObservedState {
    return {
      ...this.state,
      routes: [...this.vias].map(([dst, via]) => ({ dst, via, dev: 'eth0' })),
      vxlan: {
        device: this.vxlanDevice,
        neighbours: [...this.neighbours].map(([address, mac]) => ({ address, mac })),
        fdb: [...this.fdb].map(([mac, dst]) => ({ mac, dst })),
      },
    };
  }

  private vxlanDevice: NonNullable<ObservedState['vxlan']>['device'] = null;
  /** VTEP address -> MAC */
  private readonly neighbours = new Map<string, string>();
  /** MAC -> underlay address */
  private readonly fdb = new Map<string, string>();

  private readonly vias = new Map<string, string>();

  private swap(oldItem: string | undefined, newItem: string | undefined): void {
    if (oldItem !== undefined) this.sum = subtractHash(this.sum, itemHash(oldItem));
    if (newItem !== undefined) this.sum = addHash(this.sum, itemHash(newItem));
  }

  private apply(command: Command): void {
    switch (command.kind) {
      case 'route.replace': {
        const item = digestItem.route(command.dst, command.via, command.dev);
        this.swap(this.routes.get(command.dst), item);
        this.routes.set(command.dst, item);
        this.vias.set(command.dst, command.via);
        return;
      }
      case 'route.delete':
        this.swap(this.routes.get(command.dst), undefined);
        this.routes.delete(command.dst);
        this.vias.delete(command.dst);
        return;
      case 'firewall.chain': {
        const chains = this.state.firewall.chains;
        const index = chains.findIndex((c) => c.table === command.table && c.name === command.chain);
        const rules = command.rules.map((r) => renderRule(command.chain, r));
        const old = chains[index];
        this.swap(old && digestItem.chain(old.table, old.name, old.rules), digestItem.chain(command.table, command.chain, rules));
        const next = { table: command.table, name: command.chain, rules };
        if (index >= 0) chains[index] = next;
        else chains.push(next);
        return;
      }
      case 'firewall.jump': {
        const jumps = this.state.firewall.jumps;
        for (const j of jumps.filter((j) => j.table === command.table && j.from === command.from && j.to === command.to)) {
          this.swap(digestItem.jump(j.table, j.from, j.to, j.position), undefined);
        }
        this.state.firewall.jumps = jumps.filter((j) => !(j.table === command.table && j.from === command.from && j.to === command.to));
        this.state.firewall.jumps.push({ table: command.table, from: command.from, to: command.to, position: command.position });
        this.swap(undefined, digestItem.jump(command.table, command.from, command.to, command.position));
        return;
      }
      case 'docker.network.create':
        if (this.state.docker.networks.some((n) => n.name === command.name)) return;
        this.state.docker.networks.push({
          id: command.name,
          name: command.name,
          subnet: command.subnet,
          gateway: command.gateway,
          labels: command.labels,
          containers: 0,
        });
        this.swap(undefined, digestItem.network(command.name, command.subnet, command.gateway));
        return;
      case 'docker.network.remove': {
        const n = this.state.docker.networks.find((x) => x.name === command.name);
        if (!n) return;
        this.state.docker.networks = this.state.docker.networks.filter((x) => x !== n);
        this.swap(digestItem.network(n.name, n.subnet, n.gateway), undefined);
        return;
      }
      case 'sysctl.set': {
        const old = this.state.sysctl[command.key];
        this.swap(old === undefined ? undefined : digestItem.sysctl(command.key, old), digestItem.sysctl(command.key, command.value));
        this.state.sysctl[command.key] = command.value;
        return;
      }
      case 'docker.daemon.bip':
        this.state.docker.bip = command.bip;
        return;
      case 'vxlan.device': {
        const { name, vni, port, local, mac, mtu, address } = command;
        const device = { name, alias: VXLAN_DEVICE_ALIAS, vni, port, local, learning: false, mac, mtu, up: true, addresses: [address] };
        this.swap(this.vxlanDevice ? digestItem.vxlanDevice(this.vxlanDevice) : undefined, digestItem.vxlanDevice(device));
        this.vxlanDevice = device;
        return;
      }
      case 'vxlan.device.delete':
        if (this.vxlanDevice) this.swap(digestItem.vxlanDevice(this.vxlanDevice), undefined);
        for (const [address, mac] of this.neighbours) this.swap(digestItem.neigh(address, mac), undefined);
        for (const [mac, dst] of this.fdb) this.swap(digestItem.fdb(mac, dst), undefined);
        this.vxlanDevice = null;
        this.neighbours.clear();
        this.fdb.clear();
        return;
      case 'neigh.replace': {
        const old = this.neighbours.get(command.address);
        this.swap(old === undefined ? undefined : digestItem.neigh(command.address, old), digestItem.neigh(command.address, command.mac));
        this.neighbours.set(command.address, command.mac);
        return;
      }
      case 'neigh.delete': {
        const old = this.neighbours.get(command.address);
        if (old !== undefined) this.swap(digestItem.neigh(command.address, old), undefined);
        this.neighbours.delete(command.address);
        return;
      }
      case 'fdb.replace': {
        const old = this.fdb.get(command.mac);
        this.swap(old === undefined ? undefined : digestItem.fdb(command.mac, old), digestItem.fdb(command.mac, command.dst));
        this.fdb.set(command.mac, command.dst);
        return;
      }
      case 'fdb.delete': {
        const old = this.fdb.get(command.mac);
        if (old !== undefined) this.swap(digestItem.fdb(command.mac, old), undefined);
        this.fdb.delete(command.mac);
        return;
      }
    }
  }

  private receive(raw: string): void {
    const parsed = parseControllerMessage(raw);
    if (!parsed.ok) throw new Error(`${this.name}: ${parsed.error}`);
    const message = parsed.message;
    if (message.type === 'job') {
      const commands = message.commands as Command[];
      for (const c of commands) this.apply(c);
      this.send({
        type: 'result',
        jobId: message.jobId,
        generation: message.generation,
        accepted: true,
        results: commands.map((_, index) => ({ index, text: '', ok: true, exitCode: 0, stdout: '', stderr: '', durationMs: 0 })),
        digest: formatDigest(this.sum),
      });
      const report = { jobId: message.jobId, sentAt: performance.now() };
      this.jobs.push(report);
      this.onJob?.(report, commands);
    } else if (message.type === 'state.request') {
      this.send({ type: 'state', digest: formatDigest(this.sum), state: this.snapshot() });
    }
  }
}
