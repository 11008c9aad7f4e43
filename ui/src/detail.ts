// One host in detail: facts, subnets (release, allocate), how it reaches its peers (when the
// controller reports it), the plan it would run now, its recent jobs, and the token and
// delete actions. It follows the host live: a change of generation or job reloads the plan
// and the job list.
import { ApiError, type Api } from './api.ts';
import { confirmDialog, showToken } from './dialogs.ts';
import { ago, h, replace } from './dom.ts';
import { FormErrors, busy, field, input, select } from './forms.ts';
import { JobList } from './jobs.ts';
import { ROUTE_STATE_TEXT, routeState, type Host, type JobSummary, type Peer, type Store } from './model.ts';

const RELOAD_DELAY_MS = 300;
const JOBS_SHOWN = 20;

export class HostDetail {
  readonly el = h('section', { class: 'detail', 'aria-labelledby': 'detail-title', hidden: true });
  name: string | null = null;
  /** how the open host reaches each peer, when GET /v1/hosts/:name says */
  peers: Peer[] | undefined;
  private readonly title = h('h2', { id: 'detail-title', tabindex: '-1' });
  private readonly facts = h('dl', { class: 'facts' });
  private readonly subnets = h('ul', { class: 'subnets', 'aria-label': 'Subnets' });
  private readonly peersBox = h('div');
  private readonly plan = h('pre', { class: 'plan', tabindex: '0', 'aria-label': 'Plan as a script' });
  private readonly planNote = h('p', { class: 'muted' });
  private readonly jobs: JobList;
  private readonly actionError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  private readonly allocate: ReturnType<HostDetail['allocateForm']>;
  private lastKey = '';
  private reloadTimer: ReturnType<typeof setTimeout> | undefined;
  private loadSeq = 0;

  constructor(
    private readonly api: Api,
    private readonly store: Store,
    private readonly onClose: () => void,
    private readonly onPeers: () => void,
  ) {
    this.jobs = new JobList(api, false, 'Recent jobs of this host');
    this.allocate = this.allocateForm();
    this.el.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && !document.querySelector('dialog[open]')) this.onClose();
    });
    this.el.append(
      h(
        'div',
        { class: 'detail-head' },
        this.title,
        h('button', { type: 'button', class: 'close', onclick: () => this.onClose(), 'aria-label': 'Close host details' }, '×'),
      ),
      this.facts,
      h('h3', null, 'Subnets'),
      this.subnets,
      this.allocate.form,
      this.peersBox,
      h('h3', null, 'Plan: what it would run now'),
      this.planNote,
      this.plan,
      h('h3', null, 'Recent jobs'),
      this.jobs.el,
      h('h3', null, 'Actions'),
      h(
        'div',
        { class: 'buttons' },
        h('button', { type: 'button', onclick: (e: Event) => void this.rotate(e.currentTarget as HTMLButtonElement) }, 'Rotate token'),
        h('button', { type: 'button', class: 'danger', onclick: (e: Event) => void this.remove(e.currentTarget as HTMLButtonElement) }, 'Delete host'),
      ),
      this.actionError,
    );
  }

  open(name: string): void {
    const changed = name !== this.name;
    this.name = name;
    this.el.hidden = false;
    if (changed) {
      this.peers = undefined;
      this.lastKey = '';
      replace(this.plan, '');
      this.planNote.textContent = 'Loading…';
      this.jobs.update([]);
      this.allocate.errors.clear();
      this.actionError.hidden = true;
    }
    this.render();
    this.title.focus();
  }

  close(): void {
    this.name = null;
    this.peers = undefined;
    this.el.hidden = true;
  }

  /** The store changed: redraw, and reload plan and jobs when the host's state moved. */
  render(): void {
    if (!this.name) return;
    const host = this.store.hosts.get(this.name);
    if (!host) {
      replace(this.facts, h('p', { class: 'muted' }, `${this.name} is no longer registered.`));
      return;
    }
    const state = routeState(host);
    replace(this.title, host.name, ' ', h('span', { class: `status ${host.status}` }, host.status));
    const labels = Object.entries(host.labels);
    replace(
      this.facts,
      ...fact('Address', `${host.address} on ${host.interface}`),
      ...fact('Status', h('span', { class: `status ${host.status}` }, host.status)),
      ...fact('Last seen', host.status === 'online' ? 'now (connected)' : host.lastSeenAt ? `${ago(host.lastSeenAt)} (${host.lastSeenAt})` : 'never'),
      ...fact('Generation', `desired ${host.generation.desired}, applied ${host.generation.applied}`),
      ...fact('Routes', h('span', { class: `route ${state}` }, ROUTE_STATE_TEXT[state])),
      ...(host.segment ? fact('Segment', host.segment) : []),
      ...(labels.length > 0 ? fact('Labels', labels.map(([k, v]) => `${k}=${v}`).join(', ')) : []),
    );
    replace(
      this.subnets,
      host.subnets.length === 0 ? h('li', { class: 'muted' }, 'No subnets.') : null,
      ...host.subnets.map((s) =>
        h(
          'li',
          { 'data-subnet': s.cidr },
          h('span', { class: 'cidr' }, s.cidr),
          ` gateway ${s.gateway} · pool ${s.pool} · ${s.mode === 'bip' ? 'engine default bridge (bip)' : s.mode === 'docker' ? 'a Docker network (--ipam-driver crossdock)' : `network ${s.network}`} `,
          h(
            'button',
            {
              type: 'button',
              class: 'small',
              onclick: (e: Event) => void this.release(e.currentTarget as HTMLButtonElement, s.id, s.cidr),
              'aria-label': `Release ${s.cidr}`,
            },
            'Release',
          ),
        ),
      ),
    );
    this.allocate.refreshPools();
    const key = JSON.stringify([host.generation, host.lastJob?.id, host.lastJob?.status, host.status, host.subnets.length]);
    if (key !== this.lastKey) {
      this.lastKey = key;
      clearTimeout(this.reloadTimer);
      this.reloadTimer = setTimeout(() => void this.load(host.name), RELOAD_DELAY_MS);
    }
  }

  private async load(name: string): Promise<void> {
    const seq = ++this.loadSeq;
    const [detail, plan, jobs] = await Promise.allSettled([
      this.api.get<Host>(`/v1/hosts/${encodeURIComponent(name)}`),
      this.api.get<{ generation: number; observed: 'snapshot' | 'none'; script: string; skipped: string[] }>(`/v1/hosts/${encodeURIComponent(name)}/plan`),
      this.api.get<{ items: JobSummary[] }>(`/v1/jobs?host=${encodeURIComponent(name)}&limit=${JOBS_SHOWN}`),
    ]);
    if (seq !== this.loadSeq || this.name !== name) return;
    if (detail.status === 'fulfilled') {
      this.peers = detail.value.peers;
      this.renderPeers(detail.value.peers);
      this.onPeers();
    }
    if (plan.status === 'fulfilled') {
      const p = plan.value;
      this.planNote.textContent =
        (p.observed === 'snapshot' ? 'Diffed against what the host reports now.' : 'No executor connected: planned against an empty host.') +
        (p.skipped.length > 0 ? ` Left alone (fix by hand): ${p.skipped.join('; ')}.` : '');
      this.plan.textContent = p.script === '' ? '# nothing to do: the host has what it should' : p.script;
    } else {
      this.planNote.textContent = `Could not read the plan: ${(plan.reason as Error).message}`;
    }
    if (jobs.status === 'fulfilled') this.jobs.update(jobs.value.items);
  }

  private renderPeers(peers: Peer[] | undefined): void {
    if (!peers) {
      replace(this.peersBox);
      return;
    }
    replace(
      this.peersBox,
      h('h3', null, 'Peers'),
      h(
        'div',
        { class: 'scroll' },
        h(
          'table',
          null,
          h('thead', null, h('tr', null, ...['Peer', 'Reached', 'Applied', 'Why'].map((t) => h('th', { scope: 'col' }, t)))),
          h(
            'tbody',
            null,
            ...peers.map((p) =>
              h(
                'tr',
                null,
                h('th', { scope: 'row' }, p.host),
                h('td', null, p.reach ?? 'unknown'),
                h('td', null, p.applied === undefined ? 'unknown' : p.applied ? 'yes' : 'not yet'),
                h('td', null, p.reason ?? ''),
              ),
            ),
          ),
        ),
      ),
    );
  }

  private allocateForm() {
    const pool = field('pool', 'Pool', select([]));
    const prefixLength = field('prefixLength', 'Prefix length', input({ inputmode: 'numeric', placeholder: "pool's size" }));
    const cidr = field('cidr', 'CIDR', input({ placeholder: 'next free' }), 'leave empty for the next free subnet');
    const gateway = field('gateway', 'Gateway', input({ placeholder: 'first address' }));
    const network = field('network', 'Docker network', input({ placeholder: 'crossdock' }));
    const mode = field(
      'mode',
      'Mode',
      select([
        ['network', 'network (a Docker bridge network)'],
        ['bip', "bip (the engine's default bridge)"],
      ]),
    );
    const fields = [pool, prefixLength, cidr, gateway, network, mode];
    const errors = new FormErrors(fields, {
      POOL_EXHAUSTED: 'pool',
      POOL_NOT_FOUND: 'pool',
      SUBNET_OUTSIDE_POOL: 'cidr',
      SUBNET_OVERLAP: 'cidr',
      SUBNET_RESERVED: 'cidr',
      INVALID_CIDR: 'cidr',
      CIDR_HOST_BITS_SET: 'cidr',
      INVALID_PREFIX_LENGTH: 'prefixLength',
      INVALID_GATEWAY: 'gateway',
      INVALID_NETWORK_NAME: 'network',
      NETWORK_NAME_IN_USE: 'network',
    });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Allocate subnet');
    const form = h(
      'form',
      { class: 'inline-form', 'aria-label': 'Allocate a subnet', novalidate: true },
      h('div', { class: 'fields' }, ...fields.map((f) => f.el)),
      errors.general,
      h('div', { class: 'buttons' }, submit),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!this.name) return;
      const body: Record<string, unknown> = { host: this.name, pool: pool.input.value };
      if (prefixLength.input.value.trim())
        body.prefixLength = /^\d+$/.test(prefixLength.input.value.trim()) ? Number(prefixLength.input.value) : prefixLength.input.value;
      if (cidr.input.value.trim()) body.cidr = cidr.input.value.trim();
      if (gateway.input.value.trim()) body.gateway = gateway.input.value.trim();
      if (network.input.value.trim()) body.network = network.input.value.trim();
      if (mode.input.value !== 'network') body.mode = mode.input.value;
      void busy(submit, async () => {
        errors.clear();
        try {
          await this.api.call('POST', '/v1/subnets', body);
          for (const f of [prefixLength, cidr, gateway, network]) f.input.value = '';
        } catch (error) {
          errors.show(error);
        }
      });
    });
    const refreshPools = () => {
      const current = pool.input.value;
      const names = this.store.pools.map((p) => p.name);
      if (names.join('\n') === [...pool.input.options].map((o) => o.value).join('\n')) return;
      replace(pool.input, ...this.store.pools.map((p) => h('option', { value: p.name }, `${p.name} (${p.cidr}, /${p.subnetPrefixLength})`)));
      pool.input.value = names.includes(current) ? current : names.includes('default') ? 'default' : (names[0] ?? '');
    };
    return { form, errors, refreshPools };
  }

  private async release(button: HTMLButtonElement, id: number, cidr: string): Promise<void> {
    const host = this.name;
    const yes = await confirmDialog({
      title: `Release ${cidr}?`,
      body: [
        h(
          'p',
          null,
          `${cidr} goes back to its pool; ${host} removes its network and every other host its route to it. Containers on it lose their connectivity.`,
        ),
      ],
      confirm: `Release ${cidr}`,
      danger: true,
    });
    if (!yes) return;
    await busy(button, () => this.act(() => this.api.call('DELETE', `/v1/subnets/${id}`)));
  }

  private async rotate(button: HTMLButtonElement): Promise<void> {
    const name = this.name;
    if (!name) return;
    const yes = await confirmDialog({
      title: `Rotate the token of ${name}?`,
      body: [
        h(
          'p',
          null,
          `The current token stops working at once: ${name}'s executor is disconnected and must be restarted with the new one. Routes already on the host stay.`,
        ),
      ],
      confirm: 'Rotate token',
    });
    if (!yes) return;
    await busy(button, () =>
      this.act(async () => {
        const { token } = await this.api.call<{ token: string }>('POST', `/v1/hosts/${encodeURIComponent(name)}/token`);
        showToken(`New token for ${name}`, name, token);
      }),
    );
  }

  private async remove(button: HTMLButtonElement): Promise<void> {
    const host = this.name ? this.store.hosts.get(this.name) : undefined;
    if (!host) return;
    const peers = this.store.hosts.size - 1;
    const yes = await confirmDialog({
      title: `Delete host ${host.name}?`,
      body: [
        h('p', null, `This deletes ${host.name} (${host.address}) and:`),
        h(
          'ul',
          null,
          host.subnets.length === 0
            ? h('li', null, 'it holds no subnets;')
            : h('li', null, `releases its subnet${host.subnets.length === 1 ? '' : 's'} ${host.subnets.map((s) => s.cidr).join(', ')};`),
          h('li', null, `removes the routes to ${host.subnets.length === 1 ? 'it' : 'them'} from the ${peers} other host${peers === 1 ? '' : 's'};`),
          h('li', null, `tells its executor to remove what crossdock made on ${host.name} (routes, chains, networks without containers) and exit.`),
        ),
      ],
      confirm: `Delete ${host.name}`,
      danger: true,
    });
    if (!yes) return;
    await busy(button, () =>
      this.act(async () => {
        await this.api.call('DELETE', `/v1/hosts/${encodeURIComponent(host.name)}`);
        this.onClose();
      }),
    );
  }

  private async act(action: () => Promise<unknown>): Promise<void> {
    this.actionError.hidden = true;
    try {
      await action();
    } catch (error) {
      this.actionError.textContent = error instanceof ApiError ? `${error.message} (${error.code})` : (error as Error).message;
      this.actionError.hidden = false;
    }
  }
}

function fact(term: string, value: string | Node) {
  return [h('dt', null, term), h('dd', null, value)];
}
