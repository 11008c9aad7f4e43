// Asks the controller a few fixed questions over and over, each on its own loop, and records
// how long each answer took. It runs in a process of its own (see Prober in prober.ts) so that
// what is measured is the controller's delay, not the test runner's.
import { serveIpc } from './ipc-child.ts';
import type { ProbeSample } from './prober.ts';

let running = false;
let loops: Array<Promise<void>> = [];
const samples: ProbeSample[] = [];

async function probe(url: string, token: string, route: string, intervalMs: number): Promise<void> {
  while (running) {
    const at = performance.timeOrigin + performance.now();
    const started = performance.now();
    let status = 0;
    try {
      const response = await fetch(`${url}${route}`, { headers: { authorization: `Bearer ${token}` } });
      await response.arrayBuffer();
      status = response.status;
    } catch {
      // status 0: no answer at all
    }
    const ms = performance.now() - started;
    samples.push({ route, at, ms, status });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, intervalMs - ms)));
  }
}

serveIpc({
  start({ url, token, routes, intervalMs }: { url: string; token: string; routes: string[]; intervalMs: number }) {
    running = true;
    loops = routes.map((route) => probe(url, token, route, intervalMs));
  },
  async stop() {
    running = false;
    await Promise.all(loops);
    return samples.splice(0);
  },
});
