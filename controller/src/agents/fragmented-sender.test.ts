import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { FRAGMENT_BYTES, FragmentedSender } from './fragmented-sender.ts';

let server: WebSocketServer | undefined;
afterEach(() => server?.close());

/** A server whose connection is sent through a FragmentedSender, and a client collecting what arrives. */
async function pair() {
  server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const received: string[] = [];
  client.on('message', (data, isBinary) => {
    expect(isBinary).toBe(false);
    received.push(data.toString());
  });
  await once(client, 'open');
  const [socket] = await accepted;
  const send = vi.spyOn(socket, 'send');
  return { sender: new FragmentedSender(socket), socket, client, received, send };
}

it('sends a large message in fragments of at most FRAGMENT_BYTES, which arrive as the one message, multi-byte characters across the cuts included', async () => {
  const { sender, client, received, send } = await pair();
  // 'é' is two bytes in UTF-8: an odd prefix puts cuts inside characters.
  const big = `x${'é'.repeat(5 * FRAGMENT_BYTES)}`;
  sender.send(big);
  await vi.waitFor(() => expect(received).toHaveLength(1));
  expect(received[0]).toBe(big);
  const byteLength = Buffer.byteLength(big);
  expect(send).toHaveBeenCalledTimes(Math.ceil(byteLength / FRAGMENT_BYTES));
  for (const [data] of send.mock.calls) expect((data as Buffer).length).toBeLessThanOrEqual(FRAGMENT_BYTES);
  client.close();
});

it('keeps messages whole and in order: a small one queued behind a large one waits for it', async () => {
  const { sender, client, received } = await pair();
  const messages = ['first', 'a'.repeat(3 * FRAGMENT_BYTES + 7), 'small', 'b'.repeat(FRAGMENT_BYTES + 1), 'last'];
  for (const m of messages) sender.send(m);
  await vi.waitFor(() => expect(received).toHaveLength(messages.length));
  expect(received).toEqual(messages);
  client.close();
});

it('drops what it holds once the socket closes, and sends nothing more', async () => {
  const { sender, socket, send } = await pair();
  socket.terminate();
  await once(socket, 'close');
  sender.send('after close');
  expect(send).not.toHaveBeenCalled();
});
