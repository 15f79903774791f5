/**
 * The example load balancer (examples/cluster/proxy.js) sends a request to the next instance only
 * when that is safe: the connection was refused, the method is idempotent, or the request went out
 * on a kept-alive connection that the instance closed as idle. A POST cut on a new connection (the
 * instance died while handling it) is a 502: sending it again could do it twice.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadExample } from '../examples/load.js';

interface Proxy {
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
  pick?: (req: IncomingMessage) => number | undefined;
  counters: { failovers: number };
}
const { createProxy } = loadExample<{ createProxy(o: { targets: string[] }): Proxy }>('examples/cluster/proxy.js');

/** A target that answers "<name>", except that `cut(req, nth)` (the nth request on its connection) destroys the connection unanswered. */
async function target(name: string, cut: (req: IncomingMessage, nth: number) => boolean): Promise<{ server: Server; url: string; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const socket = req.socket as typeof req.socket & { served?: number };
    socket.served = (socket.served ?? 0) + 1;
    seen.push(`${req.method} ${socket.served}`);
    req.resume();
    if (cut(req, socket.served)) return void socket.destroy();
    req.on('end', () => res.end(name));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const closeAll = async (servers: Server[]) => {
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
};

/** A proxy in front of `a` then `b` (every request tries `a` first), and what `run(url)` gets through it. */
async function through(a: Awaited<ReturnType<typeof target>>, b: Awaited<ReturnType<typeof target>>, run: (url: string) => Promise<void>): Promise<Proxy> {
  const proxy = createProxy({ targets: [a.url, b.url] });
  proxy.pick = () => 0;
  const url = await proxy.listen();
  try {
    await run(url);
  } finally {
    await proxy.close();
    await closeAll([a.server, b.server]);
  }
  return proxy;
}

test('a GET cut on a new connection goes to the next instance', async () => {
  const b = await target('b', () => false);
  const proxy = await through(await target('a', () => true), b, async (url) => {
    const res = await fetch(`${url}/me`);
    expect([res.status, await res.text()]).toEqual([200, 'b']);
  });
  expect(proxy.counters.failovers).toBe(1);
});

test('a POST cut on a new connection (the instance died while handling it) is a 502: never sent twice', async () => {
  const b = await target('b', () => false);
  const proxy = await through(await target('a', () => true), b, async (url) => {
    const res = await fetch(`${url}/token`, { method: 'POST', body: 'grant_type=authorization_code' });
    expect(res.status).toBe(502);
  });
  expect(b.seen).toEqual([]);
  expect(proxy.counters.failovers).toBe(0);
});

test('a POST cut on a kept-alive connection that the instance was closing as idle goes to the next instance', async () => {
  const b = await target('b', () => false);
  const a = await target('a', (_req, nth) => nth === 2); // the second request on the connection finds it closing
  const proxy = await through(a, b, async (url) => {
    expect(await (await fetch(`${url}/health`)).text()).toBe('a');
    const res = await fetch(`${url}/token`, { method: 'POST', body: 'grant_type=refresh_token' });
    expect([res.status, await res.text()]).toEqual([200, 'b']);
  });
  expect(a.seen).toEqual(['GET 1', 'POST 2']);
  expect(proxy.counters.failovers).toBe(1);
});

test('a refused connection is sent to the next instance, whatever the method', async () => {
  const b = await target('b', () => false);
  const gone = createServer();
  await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
  const goneUrl = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`;
  await new Promise((resolve) => gone.close(resolve));
  const proxy = createProxy({ targets: [goneUrl, b.url] });
  proxy.pick = () => 0;
  const url = await proxy.listen();
  try {
    const res = await fetch(`${url}/token`, { method: 'POST', body: 'grant_type=x' });
    expect([res.status, await res.text()]).toEqual([200, 'b']);
  } finally {
    await proxy.close();
    await closeAll([b.server]);
  }
});
