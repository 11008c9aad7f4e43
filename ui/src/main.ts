// The dashboard: login with the admin token (kept in sessionStorage only: never a cookie,
// never a URL the server sees; `/ui#token=...` logs in and the fragment is wiped at once),
// then the fleet, live from GET /v1/events.
import { Api, ApiError, TOKEN_KEY } from './api.ts';
import { h, replace } from './dom.ts';
import { HostDetail } from './detail.ts';
import { streamEvents } from './events.ts';
import { HostTable } from './hosts.ts';
import { JobList } from './jobs.ts';
import { Store, type JobSummary } from './model.ts';
import { PoolPanel } from './pools.ts';
import { registerHostDialog } from './register.ts';
import { GRAPH_MAX_HOSTS, MESH_MAX_HOSTS, Topology } from './topology.ts';

const root = document.getElementById('app')!;
/** Jobs listed under "Recent jobs" (the stream adds each new one). */
const RECENT_JOBS_SHOWN = 50;
/** How often "last seen 5 min ago" is brought up to date between events. */
const AGO_REFRESH_MS = 10_000;

function tokenFromFragment(): string | null {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  if (token === null) return null;
  params.delete('token');
  const rest = params.toString();
  history.replaceState(null, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
  return token.trim();
}

async function checkToken(token: string): Promise<void> {
  await new Api(token).get('/v1/pools');
}

function showLogin(message?: string): void {
  document.title = 'Sign in · crossdock';
  const tokenInput = h('input', {
    id: 'admin-token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'login-hint login-error',
  });
  const error = h('p', { id: 'login-error', class: 'form-error', role: 'alert', hidden: !message }, message ?? '');
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'crossdock'),
    h('label', { for: 'admin-token' }, 'Admin token'),
    tokenInput,
    h(
      'p',
      { class: 'hint', id: 'login-hint' },
      'The controller printed it on first start and saved it beside its database (data/admin-token). It is kept in this tab only, until you sign out or close it.',
    ),
    error,
    submit,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = tokenInput.value.trim();
    if (!token) return;
    submit.disabled = true;
    checkToken(token)
      .then(() => {
        sessionStorage.setItem(TOKEN_KEY, token);
        startApp(token);
      })
      .catch((e: unknown) => {
        submit.disabled = false;
        error.textContent =
          e instanceof ApiError && e.status === 401 ? `Wrong token: the controller refused it (${e.message}).` : `Could not sign in: ${(e as Error).message}`;
        error.hidden = false;
        tokenInput.select();
        tokenInput.focus();
      });
  });
  replace(root, h('main', { class: 'login-page' }, form));
  tokenInput.focus();
}

function signOut(message?: string): void {
  sessionStorage.removeItem(TOKEN_KEY);
  stopApp?.();
  stopApp = undefined;
  showLogin(message);
}

let stopApp: (() => void) | undefined;

function startApp(token: string): void {
  document.title = 'crossdock';
  const api = new Api(token);
  const store = new Store();
  api.onUnauthorized = (error) => signOut(`Signed out: the controller refused the token (${error.message}).`);

  const connection = h('span', { class: 'connection connecting', role: 'status' }, 'connecting…');
  const graphBox = h('div', { class: 'graph', role: 'img', 'aria-label': 'Topology' });
  const graphNote = h('p', { class: 'muted graph-note' });
  const hostTable = new HostTable((name) => select(name));
  const pools = new PoolPanel(api);
  const recentJobs = new JobList(api, true, 'Recent jobs of every host');
  let selected: string | null = null;
  const detail = new HostDetail(
    api,
    store,
    () => select(null),
    () => redraw(),
  );

  const legend = h(
    'ul',
    { class: 'legend', 'aria-label': 'Legend' },
    h('li', null, h('span', { class: 'swatch node online' }), 'online'),
    h('li', null, h('span', { class: 'swatch node offline' }), 'offline'),
    h('li', null, h('span', { class: 'swatch node pending' }), 'pending (never connected)'),
    h('li', null, h('span', { class: 'swatch edge applied' }), 'routes applied'),
    h('li', null, h('span', { class: 'swatch edge pending' }), 'routes pending'),
    h('li', null, h('span', { class: 'swatch edge failed' }), 'routes failed'),
    h('li', null, h('span', { class: 'swatch edge vxlan' }), 'through VXLAN (selected host, where reported)'),
  );

  const page = h(
    'div',
    { class: 'page' },
    h(
      'header',
      { class: 'top' },
      h('h1', null, 'crossdock'),
      connection,
      h('nav', { 'aria-label': 'Sections' }, h('a', { href: '#topology' }, 'Topology'), h('a', { href: '#pools' }, 'Pools'), h('a', { href: '#jobs' }, 'Jobs')),
      h('div', { class: 'spacer' }),
      h('button', { type: 'button', class: 'primary', onclick: () => registerHostDialog(api, store) }, 'Register host'),
      h('button', { type: 'button', onclick: () => signOut() }, 'Sign out'),
    ),
    h(
      'main',
      null,
      h(
        'section',
        { id: 'topology', class: 'topology', 'aria-labelledby': 'topology-title' },
        h('h2', { id: 'topology-title' }, 'Topology'),
        h(
          'div',
          { class: 'topology-grid' },
          h('div', { class: 'graph-column' }, graphBox, graphNote, legend),
          h('div', { class: 'hosts-column' }, hostTable.el),
        ),
      ),
      detail.el,
      h('section', { id: 'pools', 'aria-labelledby': 'pools-title' }, h('h2', { id: 'pools-title' }, 'Pools'), pools.el),
      h('section', { id: 'jobs', 'aria-labelledby': 'jobs-title' }, h('h2', { id: 'jobs-title' }, 'Recent jobs'), recentJobs.el),
    ),
  );
  replace(root, page);
  const topology = new Topology(
    graphBox,
    (name) => select(name),
    (filter) => hostTable.setFilter(filter),
  );

  function select(name: string | null): void {
    const previous = selected;
    selected = name;
    if (name) detail.open(name);
    else {
      detail.close();
      if (previous) hostTable.focus(previous);
    }
    hostTable.select(name);
    redraw();
  }

  function redraw(): void {
    const hosts = store.sortedHosts();
    topology.update(hosts, selected, selected ? detail.peers : undefined);
    const online = hosts.filter((x) => x.status === 'online').length;
    const offline = hosts.filter((x) => x.status === 'offline').length;
    graphBox.setAttribute(
      'aria-label',
      `Topology of ${hosts.length} hosts: ${online} online, ${offline} offline, ${hosts.length - online - offline} pending. The table beside lists each host.`,
    );
    graphBox.hidden = topology.mode === 'table';
    graphNote.textContent =
      topology.mode === 'table'
        ? `More than ${GRAPH_MAX_HOSTS} hosts: the table lists them; the graph is not drawn.`
        : topology.mode === 'clustered'
          ? `More than ${MESH_MAX_HOSTS} hosts: hosts are grouped by segment, status and routes. Select a group to list its hosts.`
          : hosts.length === 0
            ? 'No hosts yet: register one.'
            : 'Each line is a pair of hosts, in the colour of the routes between them. Select a host for its details.';
  }

  const unsubscribe = store.subscribe((what) => {
    if (what.has('hosts')) {
      hostTable.update(store.sortedHosts());
      redraw();
      if (selected && !store.hosts.has(selected)) select(null);
    }
    if (what.has('pools')) pools.update(store.pools);
    if (what.has('jobs')) recentJobs.update(store.jobs.slice(0, RECENT_JOBS_SHOWN));
    if (selected && (what.has(`host:${selected}`) || what.has('pools') || what.has('snapshot'))) detail.render();
  });

  const stopStream = streamEvents(token, {
    onEvent: (name, data) => {
      store.apply(name, data);
      if (name === 'snapshot') {
        api
          .get<{ items: JobSummary[] }>(`/v1/jobs?limit=${RECENT_JOBS_SHOWN}`)
          .then((r) => store.addJobs(r.items))
          // Only the history before this connection is missed; new jobs still arrive on the stream.
          .catch(() => {});
      }
    },
    onState: (state, why) => {
      connection.className = `connection ${state}`;
      connection.textContent = state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' : `reconnecting: ${why ?? ''}`;
    },
    onUnauthorized: (message) => signOut(`Signed out: the controller refused the token (${message}).`),
  });

  const onResize = () => topology.resize();
  window.addEventListener('resize', onResize);
  const agoTimer = setInterval(() => hostTable.update(store.sortedHosts()), AGO_REFRESH_MS);
  stopApp = () => {
    clearInterval(agoTimer);
    stopStream();
    unsubscribe();
    window.removeEventListener('resize', onResize);
  };
}

function boot(): void {
  const fromFragment = tokenFromFragment();
  const token = fromFragment ?? sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    showLogin();
    return;
  }
  checkToken(token)
    .then(() => {
      sessionStorage.setItem(TOKEN_KEY, token);
      startApp(token);
    })
    .catch((e: unknown) => {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(
        e instanceof ApiError && e.status === 401 ? `Wrong token: the controller refused it (${e.message}).` : `Could not sign in: ${(e as Error).message}`,
      );
    });
}

boot();
