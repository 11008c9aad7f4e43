// GET /v1/events: the fleet as a server-sent event stream, for the dashboard (and for any
// client that would otherwise poll, such as a CLI waiting for a host to converge).
//
// Level-based like the rest of the controller: a connection starts with a snapshot of the
// whole fleet, then receives each host, the pool list or a job again, whole, whenever it
// changed. Changes are coalesced over EVENT_FLUSH_INTERVAL_MS, so a fan-out to 1,000 hosts is
// one query and one burst, not 1,000 of each. A client that reconnects needs no event ids or
// replay: its new snapshot replaces what it had. Nothing is listened to while nobody is
// connected.
import type { ServerResponse } from 'node:http';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Static } from '@sinclair/typebox';
import type { FleetEvent } from '../../../fleet.ts';
import { Host, type PoolWithUtilization } from '../../../schemas.ts';
import { hostInclude, hostView, poolView } from '../../../views.ts';
import { JobSummary, summary, summarySelect } from '../jobs/index.ts';

/** How long changes gather before they are read and sent (one burst per interval at most). */
export const EVENT_FLUSH_INTERVAL_MS = 200;
/** A comment line this often keeps proxies and load balancers from closing an idle stream. */
export const EVENT_KEEPALIVE_INTERVAL_MS = 15_000;
/** What the browser waits before reconnecting after the stream broke (the SSE `retry:` field). */
export const EVENT_RETRY_MS = 2_000;
/** A client that lets this much pile up unread is disconnected rather than buffered without end. */
export const MAX_UNSENT_EVENT_BYTES = 32 * 2 ** 20;

/** A host as the stream sends it: the API's host plus its newest job. */
export const FleetHost = Type.Composite([Host, Type.Object({ lastJob: Type.Union([JobSummary, Type.Null()]) })]);
export type FleetHostDto = Static<typeof FleetHost>;
type JobSummaryDto = Static<typeof JobSummary>;
type PoolDto = Static<typeof PoolWithUtilization>;

const EVENTS_DESCRIPTION = `A \`text/event-stream\` (server-sent events) that stays open. Each event's \`data\` is one line of JSON:

| event | data | when |
|---|---|---|
| \`snapshot\` | \`{hosts: [host], pools: [pool]}\` | first, on every connection: the whole fleet |
| \`host\` | host | a host was registered or changed: its subnets, address, status, last-seen time or generations |
| \`host.removed\` | \`{id, name}\` | a host was deleted |
| \`pools\` | \`{items: [pool]}\` | a pool was created, changed or deleted, or a subnet allocated or released (utilization) |
| \`job\` | job summary (as \`GET /v1/jobs\`) | a job was sent, finished or timed out |

A host is \`GET /v1/hosts/:name\`'s object plus \`lastJob\` (the newest job summary, or null); a pool is
\`GET /v1/pools/:name\`'s object, with \`utilization\`. Changes are gathered for ${EVENT_FLUSH_INTERVAL_MS} ms and each changed
object is sent once, whole. A comment line every ${EVENT_KEEPALIVE_INTERVAL_MS / 1000} s keeps the connection alive. There are no event ids: a
client that reconnects gets a new snapshot. Authenticate with the \`Authorization\` header, as every operator
route (a browser's \`EventSource\` cannot send one: read the stream with \`fetch\`); the token is never accepted in the URL.`;

interface Subscriber {
  res: ServerResponse;
  /** false until its snapshot was sent: deltas read before it would be older than the snapshot */
  ready: boolean;
}

const events: FastifyPluginAsyncTypebox = async (app) => {
  const { prisma, ipam, agents } = app;
  const subscribers = new Set<Subscriber>();
  const dirty = { hosts: new Set<number>(), removed: new Map<number, string>(), jobs: new Set<number>(), pools: false };
  let flushTimer: NodeJS.Timeout | undefined;
  let keepalive: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  let closing = false;

  function write(sub: Subscriber, chunk: string): void {
    if (sub.res.destroyed) return;
    sub.res.write(chunk);
    if (sub.res.writableLength > MAX_UNSENT_EVENT_BYTES) {
      app.log.warn({ unsentBytes: sub.res.writableLength }, 'an event stream client is not reading; disconnecting it');
      sub.res.destroy();
    }
  }

  function frame(event: string, data: unknown): string {
    return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  }

  function schedule(): void {
    if (flushTimer || flushing || subscribers.size === 0) return;
    flushTimer = setTimeout(() => {
      flushTimer = undefined;
      flushing = flush()
        .catch((error: unknown) => app.log.error({ err: error }, 'could not send fleet events'))
        .finally(() => {
          flushing = undefined;
          if (dirty.hosts.size > 0 || dirty.removed.size > 0 || dirty.jobs.size > 0 || dirty.pools || [...subscribers].some((s) => !s.ready)) schedule();
        });
    }, EVENT_FLUSH_INTERVAL_MS);
  }

  // ---- what is watched, only while someone is connected ----

  const onFleetChange = ({ change }: FleetEvent) => {
    switch (change.type) {
      case 'host.added':
        dirty.hosts.add(change.host.id);
        dirty.pools = true;
        break;
      case 'host.removed':
        dirty.hosts.delete(change.host.id);
        dirty.removed.set(change.host.id, change.host.name);
        dirty.pools = true;
        break;
      case 'subnet.added':
      case 'subnet.removed':
        dirty.hosts.add(change.after.id);
        dirty.pools = true;
        break;
      case 'host.moved':
        dirty.hosts.add(change.after.id);
        break;
      case 'pools.changed':
        dirty.pools = true;
        break;
    }
    schedule();
  };
  const onHost = (hostId: number) => {
    dirty.hosts.add(hostId);
    schedule();
  };
  const onJobs = (ids: number[]) => {
    for (const id of ids) dirty.jobs.add(id);
    schedule();
  };

  function watch(on: boolean): void {
    const method = on ? 'on' : 'off';
    agents.fleet.events[method]('change', onFleetChange);
    agents.hub.events[method]('status', onHost);
    agents.reconciler.progress[method]('host', onHost);
    agents.jobs.events[method]('jobs', onJobs);
    if (on) {
      keepalive = setInterval(() => {
        for (const sub of subscribers) if (sub.ready) write(sub, ': keepalive\n\n');
      }, EVENT_KEEPALIVE_INTERVAL_MS);
      keepalive.unref();
    } else {
      clearInterval(keepalive);
      clearTimeout(flushTimer);
      flushTimer = undefined;
      dirty.hosts.clear();
      dirty.removed.clear();
      dirty.jobs.clear();
      dirty.pools = false;
    }
  }

  // ---- reading what changed ----

  async function lastJobs(hostIds: number[] | 'all'): Promise<Map<number, JobSummaryDto>> {
    const newest = await prisma.job.groupBy({ by: ['hostId'], _max: { id: true }, ...(hostIds === 'all' ? {} : { where: { hostId: { in: hostIds } } }) });
    const ids = newest.map((n) => n._max.id).filter((id): id is number => id !== null);
    if (ids.length === 0) return new Map();
    const rows = await prisma.job.findMany({ where: { id: { in: ids } }, select: { ...summarySelect, hostId: true } });
    return new Map(rows.map((r) => [r.hostId, summary(r)]));
  }

  async function readHosts(hostIds: number[] | 'all'): Promise<FleetHostDto[]> {
    const rows = await prisma.host.findMany({ ...(hostIds === 'all' ? {} : { where: { id: { in: hostIds } } }), include: hostInclude, orderBy: { id: 'asc' } });
    const jobs = await lastJobs(hostIds === 'all' ? 'all' : rows.map((r) => r.id));
    return rows.map((r) => ({ ...hostView(r, agents.hub, agents.reconciler.generationOf(r.id)), lastJob: jobs.get(r.id) ?? null }));
  }

  async function readPools(): Promise<PoolDto[]> {
    const rows = await prisma.pool.findMany({ include: { reserved: { orderBy: { id: 'asc' } } }, orderBy: { id: 'asc' } });
    // A pool deleted between the read and here has no utilization any more: leave it out.
    return rows.filter((r) => ipam.hasPool(r.name)).map((r) => ({ ...poolView(r), utilization: ipam.utilization(r.name) }));
  }

  async function flush(): Promise<void> {
    const hostIds = [...dirty.hosts];
    const removed = [...dirty.removed];
    const jobIds = [...dirty.jobs];
    const pools = dirty.pools;
    dirty.hosts.clear();
    dirty.removed.clear();
    dirty.jobs.clear();
    dirty.pools = false;
    const ready = [...subscribers].filter((s) => s.ready);
    const fresh = [...subscribers].filter((s) => !s.ready);

    let out = '';
    for (const [id, name] of removed) out += frame('host.removed', { id, name });
    if (hostIds.length > 0) for (const host of await readHosts(hostIds)) out += frame('host', host);
    if (pools) out += frame('pools', { items: await readPools() });
    if (jobIds.length > 0) {
      const rows = await prisma.job.findMany({ where: { id: { in: jobIds } }, select: summarySelect, orderBy: { id: 'asc' } });
      for (const row of rows) out += frame('job', summary(row));
    }
    if (out) for (const sub of ready) write(sub, out);

    if (fresh.length > 0) {
      // Read after the deltas above, so that nothing a fresh client receives later is older.
      const snapshot = frame('snapshot', { hosts: await readHosts('all'), pools: await readPools() });
      for (const sub of fresh) {
        if (!subscribers.has(sub)) continue;
        write(sub, snapshot);
        sub.ready = true;
      }
    }
  }

  app.get(
    '/',
    {
      schema: {
        tags: ['events'],
        summary: 'The fleet as a live stream of server-sent events',
        description: EVENTS_DESCRIPTION,
        produces: ['text/event-stream'],
        response: {
          200: {
            description: 'an endless text/event-stream; see the table above',
            content: { 'text/event-stream': { schema: Type.String({ examples: ['event: host\ndata: {"id":1,"name":"node-1","status":"online",...}\n\n'] }) } },
          },
          401: Type.Ref('Error'),
        },
      },
    },
    async (request, reply) => {
      reply.hijack();
      const res = reply.raw;
      if (closing) {
        res
          .writeHead(503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { code: 'SHUTTING_DOWN', message: 'the controller is shutting down; reconnect in a moment' } }));
        return;
      }
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      res.write(`retry: ${EVENT_RETRY_MS}\n\n`);
      const sub: Subscriber = { res, ready: false };
      if (subscribers.size === 0) watch(true);
      subscribers.add(sub);
      request.raw.socket.setNoDelay(true);
      res.on('close', () => {
        subscribers.delete(sub);
        if (subscribers.size === 0 && !closing) watch(false);
      });
      schedule();
    },
  );

  // Open streams would keep the server from closing: end them first.
  app.addHook('preClose', async () => {
    closing = true;
    const open = [...subscribers];
    subscribers.clear();
    watch(false);
    for (const sub of open) sub.res.end();
    await flushing;
  });
};

export default events;
