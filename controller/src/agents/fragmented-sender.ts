// Sends an executor's messages over its WebSocket in fragments of FRAGMENT_BYTES, each written
// once the one before it has gone to the socket. A message written whole (a host's initial sync
// is its whole route table, about 100 KiB at 1,000 hosts) is encrypted whole into the TLS
// connection's buffer, and that buffer keeps its size after the write: 1,000 executors kept
// about 160 MiB of them. Written a fragment at a time it stays small. Fragments are the
// WebSocket's own (RFC 6455 continuation frames): the executor's ws reassembles the message.
// Messages go out whole and in order; none starts before the one before it is written.
import type { WebSocket } from 'ws';

export const FRAGMENT_BYTES = 16 * 2 ** 10;

export class FragmentedSender {
  private readonly queue: Buffer[] = [];
  private writing = false;

  constructor(private readonly socket: WebSocket) {}

  /** Queues a message; dropped if the socket is not open (the executor sends its state again on reconnect). */
  send(text: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.queue.push(Buffer.from(text));
    if (!this.writing) this.next();
  }

  private next(): void {
    const message = this.queue.shift();
    if (message === undefined || this.socket.readyState !== this.socket.OPEN) {
      this.writing = false;
      this.queue.length = 0;
      return;
    }
    this.writing = true;
    if (message.length <= FRAGMENT_BYTES) {
      // Small messages (the usual: one route, an ack) go as one frame, without waiting.
      this.socket.send(message, { binary: false }, () => this.next());
      return;
    }
    const fragment = (offset: number): void => {
      const end = Math.min(offset + FRAGMENT_BYTES, message.length);
      this.socket.send(message.subarray(offset, end), { binary: false, fin: end === message.length }, (error) => {
        if (error) {
          this.writing = false;
          this.queue.length = 0;
          return;
        }
        if (end === message.length) this.next();
        else fragment(end);
      });
    };
    fragment(0);
  }
}
