// Every host and its status as text, beside the picture: for keyboards, screen readers,
// find-in-page, tests, and fleets too large to draw. Rows are kept by host name and updated
// in place, so focus and scroll survive live updates.
import { ago, h, replace } from './dom.ts';
import { routeState, type Host } from './model.ts';

interface Row {
  tr: HTMLTableRowElement;
  cells: HTMLTableCellElement[];
  button: HTMLButtonElement;
  key: string;
}

export class HostTable {
  readonly el: HTMLElement;
  private readonly tbody = h('tbody');
  private readonly rows = new Map<string, Row>();
  private readonly filter = h('input', { type: 'search', placeholder: 'name, address, subnet or status', 'aria-label': 'Filter hosts' });
  private readonly count = h('p', { class: 'muted', role: 'status' });
  private hosts: Host[] = [];

  constructor(private readonly onSelect: (name: string) => void) {
    this.filter.addEventListener('input', () => this.update(this.hosts, true));
    this.el = h(
      'div',
      { class: 'host-table' },
      h('div', { class: 'table-tools' }, h('label', null, 'Filter ', this.filter), this.count),
      h(
        'div',
        { class: 'scroll' },
        h(
          'table',
          null,
          h('caption', { class: 'visually-hidden' }, 'Hosts, their status, subnets and routes'),
          h(
            'thead',
            null,
            h('tr', null, ...['Host', 'Status', 'Address', 'Subnets', 'Routes (generation)', 'Last seen'].map((t) => h('th', { scope: 'col' }, t))),
          ),
          this.tbody,
        ),
      ),
    );
  }

  update(hosts: Host[], force = false): void {
    this.hosts = hosts;
    const words = this.filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const shown = words.length === 0 ? hosts : hosts.filter((host) => words.every((w) => this.text(host).includes(w)));
    const keep = new Set(shown.map((host) => host.name));
    for (const [name, row] of this.rows) {
      if (!keep.has(name)) {
        row.tr.remove();
        this.rows.delete(name);
      }
    }
    let previous: Element | null = null;
    const now = Date.now();
    for (const host of shown) {
      let row = this.rows.get(host.name);
      if (!row) row = this.create(host.name);
      const state = routeState(host);
      const key = JSON.stringify([host.status, host.address, host.subnets.map((s) => s.cidr), host.generation, state, host.lastSeenAt, host.lastJob?.status]);
      if (force || key !== row.key || host.status !== 'online') {
        row.key = key;
        row.tr.dataset.status = host.status;
        const [status, address, subnets, routes, seen] = row.cells as [HTMLTableCellElement, ...HTMLTableCellElement[]];
        replace(status, h('span', { class: `status ${host.status}` }, host.status));
        replace(address!, host.address);
        replace(subnets!, host.subnets.length === 0 ? h('span', { class: 'muted' }, 'none') : host.subnets.map((s) => h('span', { class: 'cidr' }, s.cidr)));
        replace(
          routes!,
          h('span', { class: `route ${state}` }, state),
          h(
            'span',
            { class: 'muted gen', title: `generation ${host.generation.applied} of ${host.generation.desired} applied` },
            ` ${host.generation.applied}/${host.generation.desired}`,
          ),
        );
        replace(seen!, host.status === 'online' ? 'now' : h('time', { datetime: host.lastSeenAt ?? '' }, ago(host.lastSeenAt, now)));
      }
      const expected: Element | null = previous ? previous.nextElementSibling : this.tbody.firstElementChild;
      if (expected !== row.tr) this.tbody.insertBefore(row.tr, expected);
      previous = row.tr;
    }
    const online = hosts.filter((x) => x.status === 'online').length;
    const offline = hosts.filter((x) => x.status === 'offline').length;
    this.count.textContent = `${hosts.length} hosts: ${online} online, ${offline} offline, ${hosts.length - online - offline} pending${shown.length === hosts.length ? '' : `; ${shown.length} shown`}`;
  }

  /** Shows only the hosts matching these words (a cluster of the graph, say). */
  setFilter(words: string): void {
    this.filter.value = words;
    this.update(this.hosts, true);
    this.filter.focus();
  }

  select(name: string | null): void {
    for (const [n, row] of this.rows) {
      if (n === name) row.tr.setAttribute('aria-current', 'true');
      else row.tr.removeAttribute('aria-current');
    }
  }

  focus(name: string): void {
    this.rows.get(name)?.button.focus();
  }

  private text(host: Host): string {
    return [host.name, host.address, host.status, routeState(host), host.segment ?? '', ...host.subnets.map((s) => s.cidr)].join(' ').toLowerCase();
  }

  private create(name: string): Row {
    const button = h('button', { type: 'button', class: 'link', onclick: () => this.onSelect(name), 'aria-label': `${name}: open details` }, name);
    const cells = [h('td'), h('td'), h('td'), h('td'), h('td')];
    const tr = h('tr', { 'data-host': name }, h('th', { scope: 'row' }, button), ...cells);
    const row = { tr, cells, button, key: '' };
    this.rows.set(name, row);
    return row;
  }
}
