// A misbehaving executor in its own process: sends `count` hellos of `routes` routes each, one
// per connection (a controller that refuses one closes the connection; the flood reconnects),
// then exits. Its own CPU (building and masking megabytes) stays out of the
// process that measures the controller.
//   node --import tsx test/support/flood-executor.ts <controller url> <host token> <count> <routes>
import WebSocket from 'ws';
import { PROTOCOL_VERSION, emptyObservedState, observedDigest } from '@crossdock/shared';

const [url, token, countText, routesText] = process.argv.slice(2);
const state = emptyObservedState();
for (let i = 0; i < Number(routesText); i++) {
  state.routes.push({ dst: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`, via: '198.51.100.99', dev: 'eth0' });
}
const hello = JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, executorVersion: 'flood', hostname: 'flood', state, digest: observedDigest(state) });

function floodOnce(): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url!.replace(/^http/, 'ws')}/v1/agent`, { headers: { authorization: `Bearer ${token}` } });
    socket.on('open', () => socket.send(hello, () => socket.close()));
    socket.on('close', () => resolve());
    socket.on('error', (error) => (socket.readyState === WebSocket.CONNECTING ? reject(error) : undefined));
  });
}

for (let i = 0; i < Number(countText); i++) await floodOnce();
