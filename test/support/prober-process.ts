// Asks the controller a few fixed questions over and over, each on its own loop, and records
// how long each answer took. It runs in a process of its own (see Prober in prober.ts) so that
// what is measured is the controller's delay, not the test runner's.
import http from 'node:http';
import https from 'node:https';
import { serveIpc } from './ipc-child.ts';
import type { Probe, ProbeSample } from './prober.ts';

let running = false;
let loops: Array<Promise<void>> = [];
const samples: ProbeSample[] = [];

/** One GET: a fresh connection (TCP and TLS handshakes included), or the probe's one kept-alive connection. */
function get(url: URL, token: string, agent: http.Agent | false): Promise<number> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    const request = client.get(url, { agent, headers: { authorization: `Bearer ${token}` } }, (response) => {
      response.resume();
      response.once('end', () => resolve(response.statusCode ?? 0));
      response.once('error', () => resolve(0));
    });
    request.once('error', () => resolve(0));
  });
}

async function probe(base: string, token: string, { route, fresh }: Probe, intervalMs: number): Promise<void> {
  const url = new URL(route, base);
  const Agent = url.protocol === 'https:' ? https.Agent : http.Agent;
  const agent = fresh ? false : new Agent({ keepAlive: true, maxSockets: 1 });
  while (running) {
    const at = performance.timeOrigin + performance.now();
    const started = performance.now();
    const status = await get(url, token, agent);
    const ms = performance.now() - started;
    samples.push({ route, fresh: fresh ?? false, at, ms, status });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, intervalMs - ms)));
  }
  if (agent) agent.destroy();
}

serveIpc({
  start({ url, token, probes, intervalMs }: { url: string; token: string; probes: Probe[]; intervalMs: number }) {
    running = true;
    loops = probes.map((p) => probe(url, token, p, intervalMs));
  },
  async stop() {
    running = false;
    await Promise.all(loops);
    return samples.splice(0);
  },
});
