/**
 * A logout confirmation POST over the 16 KB body limit gets 413, and the keep-alive connection it
 * came on still serves the next request: behind a proxy that pools its upstream connections, that
 * next request is another user's.
 */
import net from 'node:net';
import { generateKeys, memoryAdapter } from '@openid-express/op';
import { accounts, startOp, type RunningOp } from './support/op-server.js';

let o: RunningOp;
beforeAll(async () => {
  o = await startOp(() => ({ accounts, adapter: memoryAdapter(), ...generateKeys(), clients: [] }));
});
afterAll(() => o.close());

/** Writes `requests` on one TCP connection and gives back the status lines answered within 3 s. */
function onOneConnection(requests: string[]): Promise<string[]> {
  const { port } = new URL(o.origin);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    let data = '';
    const statuses = () => data.match(/HTTP\/1\.1 \d+/g) ?? [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(statuses());
    };
    const timer = setTimeout(done, 3000);
    socket.on('data', (chunk) => {
      data += chunk;
      if (statuses().length === requests.length) done();
    });
    socket.on('error', done).on('close', done);
    socket.on('connect', () => requests.forEach((request, i) => setTimeout(() => socket.write(request), i * 200)));
  });
}

const form = `xsrf=abc&logout=yes&pad=${'A'.repeat(200_000)}`;
const head = 'POST /op/session/end/confirm HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept: text/html\r\n';
const next = 'GET /op/jwks HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n';
const chunked = (body: string) => `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;

describe('a logout confirmation with a body over the limit', () => {
  test('with Content-Length: 413, then the next request on the same connection is answered (before: no answer, reset after ~5 s)', async () => {
    const statuses = await onOneConnection([`${head}Content-Length: ${form.length}\r\n\r\n${form}`, next]);
    expect(statuses).toEqual(['HTTP/1.1 413', 'HTTP/1.1 200']);
  });

  test('chunked, with no length said up front: 413, then the next request on the same connection is answered', async () => {
    const statuses = await onOneConnection([`${head}Transfer-Encoding: chunked\r\n\r\n${chunked(form)}`, next]);
    expect(statuses).toEqual(['HTTP/1.1 413', 'HTTP/1.1 200']);
  });
});
