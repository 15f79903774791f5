// A redis-server of the bench's own on a free loopback port, and what it can tell about the work a
// client gave it: commands by name (INFO commandstats) and round trips (a counting TCP proxy).
import { spawn } from 'node:child_process';
import { createConnection, createServer } from 'node:net';

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server without persistence on a free loopback port (REDIS_URL: that Redis instead, never stopped). */
export async function startRedis() {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: () => {} };
  const port = await freePort();
  const child = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => ((out += d), out.includes('Ready to accept connections') && resolve()));
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
  });
  return { url: `redis://127.0.0.1:${port}`, port, stop: () => child.kill('SIGTERM') };
}

/**
 * Calls so far by command name (INFO commandstats of `client`, a node-redis client). A command a Lua
 * script or a MULTI runs counts as well as the EVALSHA or EXEC that ran it; INFO and CONFIG are left out.
 */
export async function commandCalls(client) {
  const calls = {};
  for (const [, name, n] of (await client.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (!/^(info|config)/.test(name)) calls[name] = Number(n);
  }
  return calls;
}

/**
 * A TCP proxy in front of the Redis at `url` that counts the writes its clients send. With one request in
 * flight at a time, each write is one round trip (node-redis writes what it queued in one go).
 */
export function countingProxy(url) {
  const { hostname, port } = new URL(url);
  const counter = { writes: 0 };
  const server = createServer((socket) => {
    const upstream = createConnection(Number(port || 6379), hostname);
    socket.on('data', (d) => {
      counter.writes += 1;
      upstream.write(d);
    });
    upstream.on('data', (d) => socket.write(d));
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    socket.on('error', () => {});
    upstream.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `redis://127.0.0.1:${server.address().port}`, counter, close: () => server.close(),
  })));
}
