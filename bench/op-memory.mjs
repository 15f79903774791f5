// Memory of an OP on memoryAdapter() under client_credentials load: peak RSS with the record cap
// (the default maxRecords, 2 000) and without it (maxRecords: Infinity, the store before the cap).
//
// Run after a build:
//   npx -y pnpm@10.34.9 -r --filter "./packages/*" build && node bench/op-memory.mjs
// Knobs (environment): N=60000 token requests per OP, CONNECTIONS=10, CAPS=Infinity,2000,10000
// (the maxRecords of each OP), OP_MODULE=/path/to/op/dist/index.js (another build of the package).
//
// Processes: this one generates load (autocannon); each OP runs in its own child process.
import { signingKey } from './lib/signing-key.mjs';
import { createServer } from 'node:http';
import { isAbsolute } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import express from 'express';
import session from 'express-session';
import { ask, serveMessages, startChild, stopChild } from './lib/children.mjs';
import { hammer } from './lib/load.mjs';

const SCRIPT = fileURLToPath(import.meta.url);
const N = Number(process.env.N ?? 60_000);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 10);
const CAPS = (process.env.CAPS ?? 'Infinity,2000').split(',');
const OP_MODULE = process.env.OP_MODULE;
const SERVICE = { client_id: 'svc', client_secret: 'svc-secret-that-is-long-enough-0123456789', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] };
const MiB = 1024 * 1024;

// ---------------------------------------------------------------- the OP child

/** RSS sampled every 10 ms: its peak is what an orchestrator's memory limit would see. */
function watchPeakRss() {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  timer.unref();
  return () => Math.max(peak, process.memoryUsage.rss());
}

/** Child: one OP on memoryAdapter({ maxRecords }). argv: op <maxRecords> <jwks JSON>. */
async function runOp(cap, jwksJson) {
  const { op, memoryAccounts, memoryAdapter } = await import(OP_MODULE ? pathToFileURL(isAbsolute(OP_MODULE) ? OP_MODULE : `${process.cwd()}/${OP_MODULE}`).href : '@openid-express/op');
  const peakRss = watchPeakRss();
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const store = memoryAdapter({ maxRecords: Number(cap) });
  const app = express();
  app.use(session({ secret: 'bench-session-secret-0123456789', resave: false, saveUninitialized: false }));
  app.use('/op', op({
    issuer: `${origin}/op`, jwks: JSON.parse(jwksJson), cookieKeys: ['bench-cookie-key-0123456789abcdef'],
    clients: [SERVICE], accounts: memoryAccounts([]), features: { clientCredentials: true }, scopes: ['api:read'], adapter: store,
  }));
  server.on('request', app);
  serveMessages({
    memory: () => {
      const peak = peakRss();
      globalThis.gc?.();
      const { rss, heapUsed } = process.memoryUsage();
      return { peakRss: peak, rss, heapUsed, entries: store.size, evicted: store.evicted };
    },
  });
  process.send({ origin });
}

// ---------------------------------------------------------------- the load generator

function tokenRequest(origin) {
  const basic = `Basic ${Buffer.from(`${SERVICE.client_id}:${SERVICE.client_secret}`).toString('base64')}`;
  return {
    url: `${origin}/op/token`, method: 'POST', expectStatus: 200, seconds: 3600, maxRequests: N, connections: CONNECTIONS,
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=api%3Aread',
  };
}

const mib = (bytes) => (bytes / MiB).toFixed(0);

async function measure(cap, jwks) {
  const { child, first } = await startChild(SCRIPT, ['op', cap, JSON.stringify(jwks)]);
  try {
    const idle = await ask(child, { cmd: 'memory' });
    const load = await hammer(tokenRequest(first.origin));
    return { cap, idle, load, after: await ask(child, { cmd: 'memory' }) };
  } finally {
    await stopChild(child);
  }
}

async function main() {
  const started = Date.now();
  console.log(`node ${process.version}, ${N} client_credentials token requests per OP, ${CONNECTIONS} connections, ClientCredentials ttl 600 s (nothing expires during the run)`);
  const jwks = { keys: [signingKey()] };
  const rows = [];
  for (const cap of CAPS) {
    rows.push(await measure(cap, jwks));
    console.error(`maxRecords ${cap} done`);
  }
  console.log('\n| memoryAdapter | req/s | RSS idle MiB | peak RSS MiB | RSS after GC MiB | heap after GC MiB | store entries | evicted |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const { cap, idle, load, after } of rows) {
    const label = cap === 'Infinity' ? 'maxRecords: Infinity (no cap, as before)' : `maxRecords: ${cap}`;
    console.log(`| ${label} | ${load.rps.toFixed(0)} | ${mib(idle.rss)} | ${mib(after.peakRss)} | ${mib(after.rss)} | ${mib(after.heapUsed)} | ${after.entries} | ${after.evicted} |`);
  }
  console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
}

const [role, ...args] = process.argv.slice(2);
if (role === 'op') await runOp(...args);
else await main();
