// Latency of the controller's answers while something else loads it: a child process
// (prober-process.ts) asks each route every `intervalMs`, one request at a time per route,
// and hands back every sample when stopped.
import { IpcChild } from './ipc-child.ts';

/** A route asked over one kept-alive connection, or (fresh) over a new connection each time, as a load balancer's health check does. */
export interface Probe {
  route: string;
  fresh?: boolean;
}

export interface ProbeSample {
  route: string;
  fresh: boolean;
  /** when the request was sent, epoch milliseconds */
  at: number;
  /** until the whole answer was read */
  ms: number;
  /** 0: no answer */
  status: number;
}

export class Prober {
  private readonly child = new IpcChild('test/support/prober-process.ts');

  async start(options: { url: string; token: string; probes: Probe[]; intervalMs: number }): Promise<void> {
    await this.child.call('start', options);
  }

  /** Stops probing and ends the process; the samples, in the order they were taken per route. */
  async stop(): Promise<ProbeSample[]> {
    try {
      return await this.child.call<ProbeSample[]>('stop');
    } finally {
      await this.child.stop();
    }
  }

  /** Ends the process without collecting (cleanup after a failure). */
  async kill(): Promise<void> {
    await this.child.stop();
  }
}
