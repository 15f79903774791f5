// Sustained mixed load against examples/cluster: full logins, protected-route requests and refreshes,
// first on 1 OP + 1 RP instance on Redis, then on 2 OP + 2 RP on the same Redis with one OP and one
// RP instance SIGKILLed and restarted in the middle. Prints logins started / completed / failed by
// step, 5xx answers, lost sessions, p50/p99 latency, logins per second and RP CPU per login.
//
// Run after a build:
//   npx -y pnpm@10.34.9 -r --filter "./packages/*" build && node bench/cluster.mjs
// Env: DURATION (seconds per run, default 20), WARMUP (seconds of unmeasured load first, default 6), USERS
// (virtual users per RP instance, default 8: each instance sees the same concurrency in every run), (virtual users, default 8), ACCESS_TOKEN_TTL
// (default 3, so refreshes happen), REDIS_URL (else a throw-away redis-server is started).
import { fileURLToPath } from 'node:url';
import { startCluster, startRedis } from '../examples/cluster/cluster.js';

const DURATION = Number(process.env.DURATION ?? 20);
const WARMUP = Number(process.env.WARMUP ?? 6); // seconds of the same load before measuring (JIT, caches, connection pools)
const USERS = Number(process.env.USERS ?? 8); // per RP instance
const ACCESS_TOKEN_TTL = Number(process.env.ACCESS_TOKEN_TTL ?? 3);
const PROTECTED_PER_LOGIN = 6; // per login: 4 × GET /me and 2 × GET /api/token, on new and older sessions
const instanceScript = fileURLToPath(new URL('../examples/cluster/instance.js', import.meta.url));

/** A scripted browser: path-aware cookie jar, manual redirects, every request timed and labelled. */
class Browser {
  cookies = [];
  constructor(stats) { this.stats = stats; }
  header(url) {
    const { hostname, pathname } = new URL(url);
    return this.cookies.filter((c) => c.host === hostname && (pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)))
      .map((c) => `${c.name}=${c.value}`).join('; ');
  }
  store(url, headers) {
    for (const line of headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const { hostname, pathname } = new URL(url);
      const c = { name: pair.slice(0, eq), value: pair.slice(eq + 1), host: hostname, path: pathname.replace(/\/[^/]*$/, '') || '/' };
      let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        if (k.toLowerCase() === 'path') c.path = v || '/';
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
        if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      this.cookies = this.cookies.filter((o) => !(o.name === c.name && o.path === c.path && o.host === c.host));
      if (!expired) this.cookies.push(c);
    }
  }
  async request(step, url, { method = 'GET', body, accept = 'text/html' } = {}) {
    const headers = { accept };
    const cookie = this.header(url);
    if (cookie) headers.cookie = cookie;
    if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const t0 = performance.now();
    let res;
    try {
      res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    } catch (err) {
      this.stats.latencies.push(performance.now() - t0);
      throw Object.assign(new Error(`${step}: ${err.message}`), { step });
    }
    const text = await res.text();
    this.stats.latencies.push(performance.now() - t0);
    if (res.status >= 500) this.stats.status5xx += 1;
    this.store(url, res.headers);
    return { status: res.status, location: res.headers.get('location') && new URL(res.headers.get('location'), url).href, text, url };
  }
}

function formOf(html, base, predicate) {
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const action = m[1].match(/action="([^"]*)"/)?.[1] ?? '';
    const fields = {};
    for (const i of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const name = i[1].match(/name="([^"]*)"/)?.[1];
      if (name) fields[name] = (i[1].match(/value="([^"]*)"/)?.[1] ?? '').replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'");
    }
    const form = { action: new URL(action.replace(/&amp;/g, '&'), base).href, fields };
    if (predicate(form)) return form;
  }
  return undefined;
}

const fail = (step, why) => Object.assign(new Error(`${step}: ${why}`), { step });

/** One full login; throws an error with `.step` set to where it failed. */
async function login(b, cluster, account) {
  let r = await b.request('rp: GET /auth/login', `${cluster.rpURL}/auth/login/op?returnTo=/me`);
  if (r.status !== 302) throw fail('rp: GET /auth/login', r.status);
  r = await b.request('op: GET /auth', r.location);
  if (r.status !== 303 && r.status !== 302) throw fail('op: GET /auth', r.status);
  r = await b.request('op: GET login form', r.location);
  const loginForm = r.status === 200 && formOf(r.text, r.url, (f) => 'password' in f.fields);
  if (!loginForm) throw fail('op: GET login form', r.status);
  r = await b.request('op: POST login', loginForm.action, { method: 'POST', body: new URLSearchParams({ ...loginForm.fields, login: account.login, password: account.password }).toString() });
  if (r.status !== 303 && r.status !== 302) throw fail('op: POST login', r.status);
  r = await b.request('op: resume after login', r.location);
  if (r.status !== 303 && r.status !== 302) throw fail('op: resume after login', r.status);
  if (r.location.includes('/interaction/')) {
    r = await b.request('op: GET consent', r.location);
    const consent = r.status === 200 && formOf(r.text, r.url, (f) => f.action.endsWith('/confirm'));
    if (!consent) throw fail('op: GET consent', r.status);
    r = await b.request('op: POST consent', consent.action, { method: 'POST', body: new URLSearchParams(consent.fields).toString() });
    if (r.status !== 303 && r.status !== 302) throw fail('op: POST consent', r.status);
    r = await b.request('op: resume after consent', r.location);
    if (r.status !== 303 && r.status !== 302) throw fail('op: resume after consent', r.status);
  }
  if (!r.location.startsWith(`${cluster.rpURL}/auth/callback/op`)) throw fail('op: redirect to the app', r.location);
  r = await b.request('rp: GET /auth/callback', r.location);
  if (r.status !== 302) throw fail('rp: GET /auth/callback', r.status);
  r = await b.request('rp: GET /me', `${cluster.rpURL}/me`, { accept: 'application/json' });
  if (r.status !== 200) throw fail('rp: GET /me', r.status);
}

const ACCOUNTS = [{ login: 'alice', password: 'wonderland' }, { login: 'carol', password: 'christmas' }];

function quantile(values, q) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** RP CPU time (µs) used from `from` on, per process: the first /health reading of a pid is its baseline. */
function cpuWatcher(instances) {
  const seen = new Map(); // pid -> { first, last }
  const read = async () => {
    await Promise.all(instances.map(async (i) => {
      try {
        const h = await (await fetch(`${i.url}/health`, { signal: AbortSignal.timeout(1000) })).json();
        const us = h.cpu.user + h.cpu.system;
        const entry = seen.get(h.pid) ?? { first: us, last: us };
        entry.last = us;
        seen.set(h.pid, entry);
      } catch { /* down */ }
    }));
  };
  const timer = setInterval(read, 500);
  return {
    read,
    async stop() {
      clearInterval(timer);
      await read();
      return [...seen.values()].reduce((n, e) => n + (e.last - e.first), 0);
    },
  };
}

async function run({ label, redisUrl, ops, rps, kill, coordination = true }) {
  const env = { NODE_ENV: 'production', ...(coordination ? {} : { COORDINATION: 'none' }) };
  const cluster = await startCluster({ redisUrl, instanceScript, ops, rps, accessTokenTtl: ACCESS_TOKEN_TTL, env });
  const users = USERS * rps;
  const stats = { latencies: [], status5xx: 0 };
  const result = {
    label, started: 0, completed: 0, failedByStep: {}, failedAfterFailover: 0, protectedOk: 0, protectedFailed: {}, sessionsLost: 0, refreshes: 0,
  };
  try {
    // warm up: the same load, not measured, so every instance's code is hot before the CPU count starts
    const warmUntil = Date.now() + WARMUP * 1000;
    await Promise.all(Array.from({ length: users }, async (_, n) => {
      while (Date.now() < warmUntil) await login(new Browser({ latencies: [], status5xx: 0 }), cluster, ACCOUNTS[n % 2]).catch(() => {});
    }));
    const cpu = cpuWatcher(cluster.instances.rp);
    await cpu.read();
    const grantsBefore = cluster.opProxy.counters.refreshGrants;
    const t0 = Date.now();
    const deadline = t0 + DURATION * 1000;
    let killedAt = Infinity;
    let routedAround = Infinity; // when the proxies had seen both killed instances refuse
    const events = [];
    if (kill) {
      setTimeout(async () => {
        killedAt = Date.now();
        events.push(`${((killedAt - t0) / 1000).toFixed(1)} s: SIGKILL ${cluster.instances.op[0].name} (pid ${cluster.instances.op[0].pid}) and ${cluster.instances.rp[0].name} (pid ${cluster.instances.rp[0].pid})`);
        const before = [cluster.opProxy.counters.failovers, cluster.rpProxy.counters.failovers];
        await Promise.all([cluster.instances.op[0].kill('SIGKILL'), cluster.instances.rp[0].kill('SIGKILL')]);
        const poll = setInterval(() => {
          if (cluster.opProxy.counters.failovers > before[0] && cluster.rpProxy.counters.failovers > before[1]) {
            routedAround = Date.now();
            clearInterval(poll);
          }
        }, 20);
      }, DURATION * 350);
      setTimeout(async () => {
        const t = Date.now();
        await Promise.all([cluster.instances.op[0].restart(), cluster.instances.rp[0].restart()]);
        events.push(`${((t - t0) / 1000).toFixed(1)} s: restart both; serving again after ${((Date.now() - t) / 1000).toFixed(1)} s`);
      }, DURATION * 550);
    }
    const pool = [];
    const user = async (n) => {
      while (Date.now() < deadline) {
        const b = new Browser(stats);
        const startedAt = Date.now();
        result.started += 1;
        try {
          await login(b, cluster, ACCOUNTS[n % 2]);
          result.completed += 1;
        } catch (err) {
          const step = err.step ?? 'unknown';
          result.failedByStep[step] = (result.failedByStep[step] ?? 0) + 1;
          if (startedAt > routedAround) result.failedAfterFailover += 1;
          continue;
        }
        // protected requests on signed-in sessions of all ages (older ones have an expired access token,
        // so /api/token refreshes): this user's new one first, then ones from the shared pool
        pool.push(b);
        if (pool.length > 64) pool.shift();
        for (let i = 0; i < PROTECTED_PER_LOGIN && Date.now() < deadline; i += 1) {
          const path = i % 3 === 2 ? '/api/token' : '/me';
          const who = i < 2 ? b : pool[Math.floor(Math.random() * pool.length)];
          if (who.lost) continue;
          try {
            const r = await who.request(`rp: GET ${path}`, `${cluster.rpURL}${path}`, { accept: 'application/json' });
            if (r.status === 200) result.protectedOk += 1;
            else {
              result.protectedFailed[r.status] = (result.protectedFailed[r.status] ?? 0) + 1;
              if (r.status === 401) {
                result.sessionsLost += 1;
                who.lost = true;
              }
            }
          } catch (err) {
            result.protectedFailed[err.message] = (result.protectedFailed[err.message] ?? 0) + 1;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: users }, (_, n) => user(n)));
    const seconds = (Date.now() - t0) / 1000;
    const rpCpuUs = await cpu.stop();
    result.refreshes = cluster.opProxy.counters.refreshGrants - grantsBefore;
    Object.assign(result, {
      seconds,
      loginsPerSecond: result.completed / seconds,
      p50: quantile(stats.latencies, 0.5),
      p99: quantile(stats.latencies, 0.99),
      requests: stats.latencies.length,
      status5xx: stats.status5xx,
      rpCpuMsPerLogin: rpCpuUs / 1000 / Math.max(1, result.completed),
      events,
    });
    return result;
  } finally {
    await cluster.stop();
  }
}

function print(r) {
  const failed = Object.values(r.failedByStep).reduce((a, b) => a + b, 0);
  console.log(`\n## ${r.label}`);
  for (const e of r.events) console.log(`  ${e}`);
  console.log(`  logins: started ${r.started}, completed ${r.completed}, failed ${failed}${failed ? ` (${Object.entries(r.failedByStep).map(([s, n]) => `${s}: ${n}`).join(', ')})` : ''}`);
  console.log(`  logins failed that started after the proxies routed around the killed instances: ${r.failedAfterFailover}`);
  console.log(`  protected requests: ${r.protectedOk} ok, failed ${JSON.stringify(r.protectedFailed)}; sessions lost (401 after login): ${r.sessionsLost}; refresh grants at the OP: ${r.refreshes}`);
  console.log(`  requests ${r.requests}, 5xx ${r.status5xx}, latency p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms`);
  console.log(`  ${r.loginsPerSecond.toFixed(1)} logins/s over ${r.seconds.toFixed(1)} s; RP CPU ${r.rpCpuMsPerLogin.toFixed(2)} ms per login (incl. its ${PROTECTED_PER_LOGIN} protected requests)`);
}

let redis;
const redisUrl = process.env.REDIS_URL || (redis = await startRedis()).url;
try {
  console.log(`node ${process.version}, ${DURATION} s per run after ${WARMUP} s of warm-up, ${USERS} virtual users per RP instance, access tokens live ${ACCESS_TOKEN_TTL} s, ${PROTECTED_PER_LOGIN} protected requests per login`);
  const single = await run({ label: '1 OP + 1 RP on Redis', redisUrl, ops: 1, rps: 1, kill: false });
  print(single);
  const steady = await run({ label: '2 OP + 2 RP on Redis, no kills', redisUrl, ops: 2, rps: 2, kill: false });
  print(steady);
  const uncoordinated = await run({ label: '2 OP + 2 RP on Redis, no kills, without redisCoordination (what the option costs)', redisUrl, ops: 2, rps: 2, kill: false, coordination: false });
  print(uncoordinated);
  const multi = await run({ label: '2 OP + 2 RP on Redis, op1 and rp1 SIGKILLed at 35 %, restarted at 55 %', redisUrl, ops: 2, rps: 2, kill: true });
  print(multi);
  const ratio = (r) => (r.rpCpuMsPerLogin / single.rpCpuMsPerLogin).toFixed(2);
  console.log(`\nRP CPU per login vs 1+1: 2+2 ${ratio(steady)}×, 2+2 without coordination ${ratio(uncoordinated)}×, 2+2 with kills ${ratio(multi)}× (target ≤ 1.15×)`);
  console.log(`coordination's own cost (2+2 with / without redisCoordination): ${(steady.rpCpuMsPerLogin / uncoordinated.rpCpuMsPerLogin).toFixed(2)}×`);
} finally {
  await redis?.stop();
}
