/**
 * Seeded fuzz over every OP and RP route (issue 13): a few thousand malformed requests, each of
 * which must get an answer below 5xx (a 503 with Retry-After is allowed) within 5 s, with no stack
 * trace, `node_modules` or configured secret in the body, and none may change a signed-in victim's
 * session. FUZZ_SEED=<n> replays a run; FUZZ_COUNT sets the number of requests (default 3000);
 * FUZZ_LOG=1 prints every request with its status.
 */
import { distinct, describe as describeFailure, judge, SLOW_MS, type Failure } from './support/checks.js';
import { generate, required, type FuzzRequest } from './support/generator.js';
import { send, type RawResponse } from './support/raw-http.js';
import { rng, seedFromEnv } from './support/rng.js';
import { readSession, startWorld, victimSignedInAtOp, type FuzzWorld } from './support/servers.js';

const SEED = seedFromEnv();
const COUNT = Number(process.env.FUZZ_COUNT ?? 3000);
const CONCURRENCY = 6;
// a hard stop so a slow machine still finishes; the test says how many requests it got through
const BUDGET_MS = Number(process.env.FUZZ_BUDGET_MS ?? 90_000);

/**
 * The victim's session record without what may legitimately move: the cookie's expiry, and the
 * logins started but not finished (any site may link to the login route; a pending login is single
 * use, bound to this browser, capped, and changes nothing of the login the victim holds).
 */
async function victimRecord(w: FuzzWorld): Promise<string> {
  const s = await readSession(w.rpStore, w.victim.sessionId);
  if (!s) return 'null';
  const { cookie: _cookie, oidc, ...rest } = s as typeof s & { oidc?: { transactions?: unknown } };
  const { transactions: _pending, ...login } = oidc ?? {};
  return JSON.stringify({ ...rest, oidc: login });
}

describe(`fuzz: every OP and RP route (FUZZ_SEED=${SEED})`, () => {
  let world: FuzzWorld;
  const failures: Failure[] = [];
  let sent = 0;
  const statuses: Record<number, number> = {};

  beforeAll(async () => {
    console.log(`fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED})`);
    world = await startWorld();
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  // the checks themselves must be able to fail
  it('judges a 500, a code-less 5xx, a stack trace, node_modules, a secret and a slow answer as failures, a 503 with code and Retry-After not', () => {
    const answer = (status: number, body: string, extra: Partial<RawResponse> = {}): RawResponse => ({ status, headers: {}, body: Buffer.from(body), ms: 3, timedOut: false, ...extra });
    const secrets = { 'client secret': 's3cr3t-value' };
    expect(judge(answer(500, 'oops'), secrets)).toEqual(['status 500']);
    expect(judge(answer(503, '{"error":"store_unavailable"}', { headers: { 'retry-after': '5' } }), secrets)).toEqual([]);
    expect(judge(answer(502, '{"error":"webfinger_failed"}'), secrets)).toEqual([]);
    expect(judge(answer(503, 'busy'), secrets)).toEqual(['status 503 without a stable error code', '503 without Retry-After']);
    expect(judge(answer(400, 'TypeError: x\n    at parse (/work/main/packages/op/src/webfinger.ts:27:12)'), secrets)).toEqual(['stack trace in body']);
    expect(judge(answer(400, '<pre>at Object.&lt;anonymous&gt; (/app/node_modules/x/index.js:1:2)</pre>'), secrets)).toEqual(['stack trace in body', '"node_modules" in body']);
    expect(judge(answer(400, '{"client_secret":"s3cr3t-value"}'), secrets)).toEqual(['secret in body: client secret']);
    expect(judge(answer(200, 'ok', { ms: SLOW_MS + 1 }), secrets)).toEqual([`answered after ${SLOW_MS + 1} ms`]);
    expect(judge(answer(0, '', { timedOut: true }), secrets)).toEqual([`no answer within ${SLOW_MS} ms`]);
    expect(judge(answer(400, 'Invalid request at line 3'), secrets)).toEqual([]);
  });

  it('answers every malformed request without a 500 (an upstream failure: 502/503 with a stable code), quickly, leaking nothing, victim untouched', async () => {
    const r = rng(SEED);
    const before = await victimRecord(world);
    const original = await readSession(world.rpStore, world.victim.sessionId);
    const requests: FuzzRequest[] = [...required(world, r)];
    while (requests.length < COUNT) requests.push(generate(world, r));

    const run = async (req: FuzzRequest) => {
      const res = await send(req.to === 'op' ? world.op.port : world.rp.port, req, SLOW_MS + 1000);
      sent += 1;
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (process.env.FUZZ_LOG) process.stdout.write(`${res.status} ${Math.round(res.ms)}ms ${req.route} [${req.mutations.join(', ')}] ${req.method} ${req.target.slice(0, 120)} ${JSON.stringify(req.headers).slice(0, 160)}\n`);
      const reasons = judge(res, world.secrets);
      if (req.victim) {
        const now = await victimRecord(world);
        if (now !== before) {
          reasons.push(now === 'null' ? "ended the victim's session" : "changed the victim's session record");
          // put the victim back so later requests are judged on their own
          world.rpStore.set(world.victim.sessionId, structuredClone(original!));
        }
      }
      if (reasons.length) failures.push({ req, status: res.status, body: res.body.toString('latin1'), reasons });
    };

    const started = Date.now();
    const inflight = new Set<Promise<void>>();
    for (const req of requests) {
      if (Date.now() - started > BUDGET_MS) break;
      // the victim's requests run alone, so a change to its session is pinned on the right one
      if (req.victim) {
        await Promise.all(inflight);
        await run(req);
        continue;
      }
      while (inflight.size >= CONCURRENCY) await Promise.race(inflight);
      const p: Promise<void> = run(req).finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await Promise.all(inflight);
    const elapsed = Date.now() - started;
    const byStatus = Object.entries(statuses).sort().map(([k, v]) => `${k}: ${v}`).join(', ');
    console.log(`fuzz: ${sent} of ${requests.length} requests in ${elapsed} ms (seed ${SEED}); statuses ${byStatus}`);

    // after the run: the victim is still signed in as the same user, its record unchanged
    const me = await fetch(`${world.rp.origin}/me`, { headers: { cookie: world.victim.rpCookie, accept: 'application/json' } });
    const meBody = await me.text();
    if (me.status !== 200 || meBody !== JSON.stringify(world.victim.me)) {
      failures.push({ req: { to: 'rp', route: 'victim check', mutations: [], method: 'GET', target: '/me', headers: [] }, status: me.status, body: meBody, reasons: ["the victim's /me changed"] });
    }
    const atOp = await victimSignedInAtOp(world);
    if (atOp !== 'signed in') {
      failures.push({ req: { to: 'op', route: 'victim check', mutations: [], method: 'GET', target: '/op/auth?prompt=none', headers: [] }, status: 0, body: atOp, reasons: ["the victim's OP session ended"] });
    }
    const after = await victimRecord(world);
    if (after !== before) {
      failures.push({ req: { to: 'rp', route: 'victim check', mutations: [], method: 'GET', target: '(session store)', headers: [] }, status: 0, body: after, reasons: ["the victim's session record changed"] });
    }

    const shapes = distinct(failures);
    if (shapes.length) {
      throw new Error(`${failures.length} of ${sent} fuzzed requests failed (FUZZ_SEED=${SEED}); ${shapes.length} distinct shapes:\n${shapes.map(describeFailure).join('\n')}`);
    }
    expect(sent).toBe(requests.length);
  }, 180_000);
});
