/**
 * The port helpers every test that starts a child process on a port uses: a port found free and
 * taken before the child bound it is retried on a new port, any other failure is not, and the
 * servers we start (redis-server, Apache, Node) word a taken port in a way `portTaken` knows.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { freePort, listenerOf, onFreePort, onFreePorts, portTaken } from './ports.js';
import { launch } from './redis-server.js';
import { APACHE, spawnOnFreePort, startApache, stopProcessGroup } from '../interop/support/apache.js';

function hold(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
const release = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

test('freePort() gives a loopback port that can be bound', async () => {
  const port = await freePort();
  expect(port).toBeGreaterThan(0);
  await release(await hold(port));
});

test('onFreePort(): a port taken before it was bound is retried on a new port; the result is the last attempt\'s', async () => {
  const tried: number[] = [];
  const held: Server[] = [];
  try {
    const port = await onFreePort(async (p) => {
      tried.push(p);
      if (tried.length === 1) held.push(await hold(p)); // someone else takes it first
      const server = await hold(p); // what the child would do
      await release(server);
      return p;
    });
    expect(tried).toHaveLength(2);
    expect(port).toBe(tried[1]);
    expect(tried[1]).not.toBe(tried[0]);
  } finally {
    await Promise.all(held.map(release));
  }
});

test('onFreePort(): another failure is thrown at once, and a port that stays taken gives up after the attempts', async () => {
  let calls = 0;
  await expect(onFreePort(async () => { calls++; throw new Error('config refused'); })).rejects.toThrow('config refused');
  expect(calls).toBe(1);
  calls = 0;
  await expect(onFreePort(async () => { calls++; throw new Error('listen EADDRINUSE: address already in use'); })).rejects.toThrow(/EADDRINUSE/);
  expect(calls).toBe(3);
  calls = 0;
  await expect(onFreePort(async () => { calls++; throw new Error('exited'); }, () => true, 5)).rejects.toThrow('exited');
  expect(calls).toBe(5);
});

test('onFreePorts(): distinct ports, all handed over at once', async () => {
  const ports = await onFreePorts(4, async (p) => p);
  expect(new Set(ports).size).toBe(4);
});

test("portTaken() knows Node's, redis-server's and Apache's words for a taken port", async () => {
  const server = await hold(0);
  const { port } = server.address() as { port: number };
  try {
    const node = await new Promise<Error>((resolve) => createServer().once('error', resolve).listen(port, '127.0.0.1'));
    expect(portTaken(node)).toBe(true);

    expect(existsSync('/usr/bin/redis-server')).toBe(true); // CI installs it (.ci/run)
    const redis = await launch('/usr/bin/redis-server', port, []).then(
      (child) => { child.kill('SIGKILL'); return new Error('redis-server started on a taken port'); },
      (err: Error) => err,
    );
    expect(redis.message).toContain('Address already in use');
    expect(portTaken(redis)).toBe(true);

    expect(existsSync(APACHE)).toBe(true); // CI installs it (.ci/run)
    const apache = await startApache({ port, metadataUrl: 'http://127.0.0.1:1/op/.well-known/openid-configuration', clientId: 'x', clientSecret: 'y' })
      .then(async (a) => { await a.stop(); return new Error('apache2 started on a taken port'); }, (err: Error) => err);
    expect(apache.message).toMatch(/already in use/);
    expect(portTaken(apache)).toBe(true);

    const quickstart = spawnSync(process.execPath, ['examples/quickstart/main.js'], {
      env: { ...process.env, PORT: String(port), OP_PORT: '0', NODE_ENV: 'development' }, encoding: 'utf8', timeout: 30_000,
    });
    expect(quickstart.stderr).toContain(`Port ${port} is already in use`);
    expect(portTaken(new Error(quickstart.stderr))).toBe(true);

    expect(portTaken(new Error('apache2 exited with 1'))).toBe(false);
    expect(portTaken('nothing')).toBe(false);
  } finally {
    await release(server);
  }
});

/** A detached Node child that listens on `port` after `delayMs` (or never, with -1). */
function nodeServer(port: number, delayMs: number): ChildProcess {
  const code = delayMs < 0 ? 'setInterval(() => {}, 1000)'
    : `setTimeout(() => require('node:net').createServer().listen(${port}, '127.0.0.1'), ${delayMs}); setInterval(() => {}, 1000)`;
  return spawn(process.execPath, ['-e', code], { detached: true, stdio: 'ignore' });
}
const exitOf = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

test('listenerOf(): the process group that holds the listening socket is told from a stranger', async () => {
  const port = await freePort();
  const child = nodeServer(port, 0);
  try {
    for (let i = 0; i < 100 && listenerOf(port, child.pid!) !== 'ours'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(listenerOf(port, child.pid!)).toBe('ours');
    expect(listenerOf(port, process.pid)).toBe('other'); // (jest's group is not the child's)
  } finally {
    await stopProcessGroup(child, exitOf(child));
  }
  const stranger = await hold(0);
  const { port: held } = stranger.address() as { port: number };
  const idle = nodeServer(held, -1);
  try {
    expect(listenerOf(held, idle.pid!)).toBe('other');
  } finally {
    await release(stranger);
    await stopProcessGroup(idle, exitOf(idle));
  }
  expect(listenerOf(held, process.pid)).toBe('unknown'); // nobody listens
});

test('spawnOnFreePort(): a stranger answering on the port is not taken for the server; it starts again on a new port', async () => {
  const children: ChildProcess[] = [];
  const stranger: Server[] = [];
  try {
    const port = await spawnOnFreePort('stand-in server', 10_000, (p) => {
      // first attempt: someone else listens on the port; the server has not bound it (yet)
      if (children.length === 0) void hold(p).then((s) => stranger.push(s));
      const child = nodeServer(p, children.length === 0 ? -1 : 0);
      children.push(child);
      return child;
    }, () => {});
    expect(children).toHaveLength(2);
    expect(listenerOf(port, children[1]!.pid!)).toBe('ours');
    expect(children[0]!.signalCode).toBe('SIGTERM'); // the first server was stopped, not left behind
  } finally {
    await Promise.all(stranger.map(release));
    await Promise.all(children.map((c) => stopProcessGroup(c, exitOf(c))));
  }
});
