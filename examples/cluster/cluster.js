// Starts the whole deployment on one machine: (a throw-away redis-server,) N OP and M RP instances
// as child processes (instance.js) on free ports, and a round-robin proxy in front of each tier.
// Used by main.js (`npm run cluster`), by the multi-process tests and by bench/cluster.mjs.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { generateKeys } from '@openid-express/op';
import { createProxy } from './proxy.js';

/** A port that was free a moment ago (bound on port 0 and released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const MAX_OUTPUT = 256 * 1024;

/**
 * A child process that prints `ready` when it serves; restartable with the same command line.
 * `output()` is everything it printed (all its runs), for error reports.
 */
function supervised({ name, command, args, env, ready, echo, timeoutMs = 30_000 }) {
  let output = '';
  const handle = {
    name,
    child: undefined,
    get pid() { return handle.child?.pid; },
    output: () => output,
    /** True while the current process has not exited. */
    alive: () => Boolean(handle.child) && handle.child.exitCode === null && handle.child.signalCode === null,
    start,
    kill: (signal = 'SIGKILL') => {
      if (handle.alive()) handle.child.kill(signal);
      return handle.exited();
    },
    /** Resolves when the current process has exited. */
    exited: () => (handle.alive() ? new Promise((resolve) => handle.child.once('exit', () => resolve())) : Promise.resolve()),
    /** SIGTERM, SIGKILL after `graceMs`. */
    stop: async (graceMs = 3000) => {
      if (!handle.alive()) return;
      const timer = setTimeout(() => handle.child?.kill('SIGKILL'), graceMs);
      handle.child.kill('SIGTERM');
      await handle.exited();
      clearTimeout(timer);
    },
  };
  const append = (text) => {
    output += text;
    if (output.length > MAX_OUTPUT) output = output.slice(-MAX_OUTPUT);
    if (echo) process.stderr.write(text.replace(/^(?=.)/gm, `[${name}] `));
  };

  function start() {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    handle.child = child;
    append(`--- ${name}: ${[command, ...args].join(' ')} (pid ${child.pid})\n`);
    return new Promise((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => fail(`${name} did not print a ready line within ${timeoutMs / 1000} s`), timeoutMs);
      function fail(why) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new Error(`${why}. Its output:\n${output}`));
      }
      const onStdout = (chunk) => {
        const text = chunk.toString();
        append(text);
        seen += text;
        const m = seen.match(ready);
        if (m) {
          clearTimeout(timer);
          child.off('exit', onEarlyExit);
          child.off('error', onError);
          resolve(m);
        }
      };
      const onError = (err) => fail(`${name} could not start (${err.message})`);
      const onEarlyExit = (code, signal) => fail(`${name} exited (${code ?? signal}) before it was ready`);
      child.stdout.on('data', onStdout);
      child.stderr.on('data', (chunk) => append(chunk.toString()));
      child.once('error', onError);
      child.once('exit', onEarlyExit);
      child.once('exit', (code, signal) => append(`--- ${name} (pid ${child.pid}) exited: ${code ?? signal}\n`));
    });
  }
  return handle;
}

/**
 * Starts a throw-away redis-server (no persistence) on `port` (default: a free one).
 * `restart()` starts it again on the same port (after a kill).
 *
 * @example
 *   const redis = await startRedis();
 *   process.kill(redis.pid, 'SIGSTOP'); // a Redis that stops answering
 */
export async function startRedis({ port, binary = process.env.REDIS_SERVER_BIN ?? 'redis-server', echo = false } = {}) {
  const startOn = async (chosen) => {
    const handle = supervised({
      name: 'redis',
      command: binary,
      args: ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      env: process.env,
      ready: /Ready to accept connections/,
      echo,
      timeoutMs: 10_000,
    });
    try {
      await handle.start();
    } catch (err) {
      if (/ENOENT/.test(err.message)) {
        throw new Error(`${binary} not found: install Redis (e.g. \`apt-get install -y redis-server\`) or set REDIS_URL to a running one`);
      }
      throw err;
    }
    return Object.assign(handle, {
      port: chosen,
      url: `redis://127.0.0.1:${chosen}`,
      restart: () => handle.start(),
    });
  };
  // a port asked for is used as it is; a free one is found again when it was taken meanwhile
  return port === undefined ? onFreePorts(async () => startOn(await freePort()), /Address already in use/) : startOn(port);
}

/**
 * `start()`, which binds ports found free (freePort), again while it fails with an error matching
 * `taken` (up to 3 attempts in all): such a port can be taken before it is bound, e.g. as the local
 * port of another process's connection.
 */
async function onFreePorts(start, taken) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await start();
    } catch (err) {
      if (attempt < 3 && taken.test(err.message)) continue;
      throw err;
    }
  }
}

/**
 * Starts `ops` OP and `rps` RP instances of instance.js on one Redis, and a proxy in front of each tier.
 *
 * @param {object} o
 * @param {string} o.redisUrl
 * @param {string} o.instanceScript  absolute path of instance.js
 * @param {number} [o.ops=2]
 * @param {number} [o.rps=2]
 * @param {number} [o.accessTokenTtl]  seconds (short ones make refreshes happen)
 * @param {boolean} [o.echo]  copy the instances' output to this process's stderr, prefixed
 * @param {object} [o.opProxy]  extra createProxy() options for the OP's proxy (e.g. `clientAddress`)
 * @param {object} [o.rpProxy]  extra createProxy() options for the RP's proxy
 * @param {(role: 'op' | 'rp', index: number) => object} [o.instanceEnv]  extra environment of one instance
 *   (e.g. its own REDIS_URL, to put something between that instance and Redis)
 * @returns {Promise<Cluster>}
 * @example
 *   const cluster = await startCluster({ redisUrl, instanceScript: '/path/to/instance.js' });
 *   console.log(cluster.rpURL); // open it
 *   await cluster.stop();
 */
export async function startCluster(options) {
  return onFreePorts(() => startClusterOnce(options), /EADDRINUSE/);
}

async function startClusterOnce({
  redisUrl, instanceScript, ops = 2, rps = 2, accessTokenTtl, echo = false, opProxy: opProxyOptions = {}, rpProxy: rpProxyOptions = {},
  env: extraEnv = {}, instanceEnv = () => ({}),
}) {
  if (!instanceScript) throw new TypeError('startCluster: `instanceScript` (the path of instance.js) is required');
  const opPorts = await Promise.all(Array.from({ length: ops }, () => freePort()));
  const rpPorts = await Promise.all(Array.from({ length: rps }, () => freePort()));
  // OP behind 127.0.0.1, the app behind localhost: two sites, so cookies behave as in production.
  const opProxy = createProxy({ ...opProxyOptions, targets: opPorts.map((p) => `http://127.0.0.1:${p}`), tokenPath: '/op/token' });
  const rpProxy = createProxy({ ...rpProxyOptions, targets: rpPorts.map((p) => `http://127.0.0.1:${p}`) });
  const opOrigin = await opProxy.listen(0, '127.0.0.1');
  const rpURL = (await rpProxy.listen(0, '127.0.0.1')).replace('127.0.0.1', 'localhost');
  const issuer = `${opOrigin}/op`;
  const clientId = 'cluster-app';
  const clientSecret = randomBytes(24).toString('base64url');
  const client = {
    client_id: clientId,
    client_secret: clientSecret,
    client_name: 'Cluster demo',
    client_uri: `${rpURL}/`, // the OP's pages link back here
    redirect_uris: [`${rpURL}/auth/callback/op`],
    post_logout_redirect_uris: [`${rpURL}/`],
    backchannel_logout_uri: `${rpURL}/auth/backchannel-logout/op`,
    backchannel_logout_session_required: true,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  };
  // One set of keys for every OP instance: a token signed by one is verified by all.
  const { jwks, cookieKeys } = generateKeys();
  const base = { ...process.env, NODE_ENV: process.env.NODE_ENV ?? 'production', REDIS_URL: redisUrl, ...extraEnv };
  const opEnv = {
    ...base, ISSUER: issuer, HOME_URI: `${rpURL}/`, CLIENTS: JSON.stringify([client]), OP_JWKS: JSON.stringify(jwks), OP_COOKIE_KEYS: JSON.stringify(cookieKeys),
    SESSION_SECRET: randomBytes(32).toString('base64url'), ...(accessTokenTtl ? { ACCESS_TOKEN_TTL: String(accessTokenTtl) } : {}),
  };
  const rpEnv = {
    ...base, BASE_URL: rpURL, ISSUER: issuer, CLIENT_ID: clientId, CLIENT_SECRET: clientSecret, SESSION_SECRET: randomBytes(32).toString('base64url'),
  };
  const instance = (role, index, port, env) => {
    const handle = supervised({
      name: `${role}${index + 1}`,
      command: process.execPath,
      args: [instanceScript, role],
      env: { ...env, ...instanceEnv(role, index), PORT: String(port) },
      ready: /listening on (http:\/\/\S+)/,
      echo,
    });
    return Object.assign(handle, { role, index, port, url: `http://127.0.0.1:${port}`, restart: () => handle.start() });
  };
  const instances = {
    op: opPorts.map((port, i) => instance('op', i, port, opEnv)),
    rp: rpPorts.map((port, i) => instance('rp', i, port, rpEnv)),
  };
  const all = [...instances.op, ...instances.rp];
  const cluster = {
    issuer, opURL: opOrigin, rpURL, clientId, clientSecret, opProxy, rpProxy, instances, all,
    /** Everything the instances printed, for error reports. */
    output: () => all.map((i) => i.output()).join('\n'),
    async stop() {
      await Promise.all(all.map((i) => i.stop()));
      await Promise.all([opProxy.close(), rpProxy.close()]);
    },
    /** Synchronous last resort (e.g. from an 'exit' handler). */
    killAll() {
      for (const i of all) if (i.alive()) i.child.kill('SIGKILL');
    },
  };
  try {
    await Promise.all(all.map((i) => i.start()));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
