/**
 * What an operator sees while the store fails: one `console.warn` line per failure a minute (before:
 * nothing without DEBUG), naming the store, the call and what to check, never a password or a token;
 * and what a visitor sees under NODE_ENV=production: a 503 with Retry-After that quotes nothing of Redis.
 */
import type { ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import session from 'express-session';
import * as openid from 'openid-client';
import { createClient } from 'redis';
import { generateKeys, memoryAdapter, redisAdapter } from '@openid-express/op';
import { FormBrowser, signIn } from '../../../test/support/op-forms.js';
import { launch, stopProcess } from '../../../test/support/redis-server.js';
import { StoreUnavailableError, warnStoreFailure, withoutSecrets } from '../src/errors.js';
import { ALICE, accounts, listen, startOp, type RunningOp } from './support/op-server.js';

const REDIS_PORT = 7431;
const OP_PORT = 7432;
const PASSWORD = 'redis-password-not-for-logs';
const SECRET = 'web-secret-web-secret';
const CODE = 'a-code-that-must-never-be-logged-0123456789';
const basic = `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}`;

/** The lines op() said with console.warn. */
const opLines = (warn: jest.SpyInstance): string[] => warn.mock.calls.map((args) => args.map(String).join(' ')).filter((line) => line.startsWith('[@openid-express/op]'));

// before: only an id right after ':' or '{' was masked, and a URL's userinfo only up to its first '@' or '/'
describe('what a store\'s error may quote is not in the log line', () => {
  const ID = 'AbCdEfGhIjKlMnOpQrStUvWx';
  test.each([
    ['a quoted session id (MongoDB E11000)', `E11000 duplicate key error collection: app.sessions index: _id_ dup key: { _id: "${ID}" }`, ID],
    ['a PostgreSQL key detail', `duplicate key value violates unique constraint "session_pkey": Key (sid)=(${ID}) already exists`, ID],
    ['a JSON value', `cannot save {"sid":"${ID}"}`, ID],
    ['a key\'s id', `WRONGTYPE reading oidc:AccessToken:${ID}`, ID],
    ['a JWT', 'bad token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg', 'eyJzdWIiOiJhbGljZSJ9'],
    ['a signed session id in base64', 'cookie s:Qk9xV3J+a2VyL3Rva2VuLXZhbHVl/PT0+ZW5k= refused', 'a2VyL3Rva2V'],
    ['a UUID', 'no session 123e4567-e89b-12d3-a456-426614174000', '426614174000'],
    ['a URL password with an unencoded @', 'connect failed redis://:s3cr@t-pass-word@10.0.0.5:6379', 't-pass-word'],
    ['a URL password with an unencoded /', 'connect failed redis://app:pass/word-secret@10.0.0.5:6379', 'word-secret'],
  ])('%s', (_label, text, secret) => {
    expect(withoutSecrets(text)).not.toContain(secret);
  });
  test('the rest of the line stays readable: words, Redis\'s commands and settings, model names, hosts and numbers', () => {
    const text = 'Redis did not answer Interaction.upsert within 2000 ms (ERR_SOCKET_CLOSED, SocketClosedUnexpectedlyError, '
      + 'WRONGPASS invalid username-password pair, OOM command not allowed when used memory > \'maxmemory\', maxmemory-policy noeviction, '
      + 'EVALSHA AuthorizationCode.settle, redis-master.prod.svc.cluster.local:6379, 10.0.0.5, 1733563200000123, /usr/local/bin/redis-server)';
    expect(withoutSecrets(text)).toBe(text);
    expect(withoutSecrets(`connect redis://user:pw@10.0.0.5:6379 for sess:${ID}`)).toBe('connect redis://…@10.0.0.5:6379 for sess:…');
  });
});

// before: the once-a-minute limit was keyed by the exact message, and all of it forgotten at 100 entries
describe('a failure whose message differs per request is said once a minute, not once per request', () => {
  let o: RunningOp;
  const STORE_SECRET = 'test-secret-test-secret';
  class QuotingStore extends session.MemoryStore {
    override get(sid: string, cb: (err: unknown) => void): void {
      cb(new Error(`E11000 duplicate key error collection: app.sessions index: _id_ dup key: { _id: "${sid}" }`));
    }
  }
  beforeAll(async () => {
    const server = await listen();
    server.close();
    await new Promise<void>((resolve) => server.listen(7452, '127.0.0.1', resolve));
    o = await startOp((_issuer, origin) => ({
      accounts, adapter: memoryAdapter(), storeTimeout: 2000, ...generateKeys(),
      session: session({ secret: STORE_SECRET, resave: false, saveUninitialized: false, store: new QuotingStore() }),
      clients: [{ client_id: 'web', client_secret: SECRET, redirect_uris: [`${origin}/cb`] }],
    }), { server, session: false });
  });
  afterAll(() => o?.close());
  afterEach(() => jest.restoreAllMocks());

  test('150 requests whose session store error quotes each one\'s session id: one line, with no session id', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const sids: string[] = [];
    for (let i = 0; i < 150; i++) {
      const sid = randomBytes(18).toString('base64url');
      sids.push(sid);
      const cookie = `connect.sid=${encodeURIComponent(`s:${sid}.${createHmac('sha256', STORE_SECRET).update(sid).digest('base64').replace(/=+$/, '')}`)}`;
      const res = await fetch(`${o.issuer}/session/end`, { headers: { accept: 'text/html', cookie } });
      expect(res.status).toBe(503);
      await res.arrayBuffer();
    }
    const lines = opLines(warn);
    expect(lines).toEqual([expect.stringContaining('the session store failed (E11000 duplicate key error')]);
    expect(sids.filter((sid) => lines[0].includes(sid))).toEqual([]);
  }, 60_000);
  test('150 failures that differ by a number (a connection counter): one line', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    for (let i = 0; i < 150; i++) warnStoreFailure(new StoreUnavailableError(`connection ${i} to 10.0.0.${i % 9}:6379 closed`));
    expect(opLines(warn)).toEqual([expect.stringContaining('connection 0 to 10.0.0.0:6379 closed')]);
  });
  test('past 100 kinds of failure the oldest is forgotten, not all of them: the 100 said since are not said again', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const kind = (i: number) => new StoreUnavailableError(`failure ${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}`);
    for (let i = 0; i <= 100; i++) warnStoreFailure(kind(i));
    expect(opLines(warn)).toHaveLength(101);
    for (let i = 1; i <= 100; i++) warnStoreFailure(kind(i));
    expect(opLines(warn)).toHaveLength(101);
  });
});

describe('Redis stalls (SIGSTOP) under NODE_ENV=production', () => {
  let redis: ChildProcess;
  let client: ReturnType<typeof createClient>;
  let o: RunningOp;
  let warn: jest.SpyInstance;
  const env = process.env.NODE_ENV;
  beforeAll(async () => {
    redis = await launch(process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server', REDIS_PORT, ['--requirepass', PASSWORD]);
    client = createClient({ url: `redis://:${PASSWORD}@127.0.0.1:${REDIS_PORT}` }).on('error', () => undefined);
    await client.connect();
    process.env.NODE_ENV = 'production';
    const server = await listen();
    server.close();
    await new Promise<void>((resolve) => server.listen(OP_PORT, '127.0.0.1', resolve));
    o = await startOp((_issuer, origin) => ({
      accounts, adapter: redisAdapter(client, { timeout: 300 }), authenticators: undefined, ...generateKeys(),
      clients: [{ client_id: 'web', client_secret: SECRET, redirect_uris: [`${origin}/cb`] }],
    }), { server });
  }, 60_000);
  beforeEach(() => void (warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined)));
  afterEach(() => {
    redis.kill('SIGCONT');
    jest.restoreAllMocks();
  });
  afterAll(async () => {
    process.env.NODE_ENV = env;
    await o?.close();
    client?.destroy();
    if (redis) await stopProcess(redis, 'SIGTERM');
  });

  const tokenRequest = () => fetch(`${o.issuer}/token`, {
    method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: CODE, redirect_uri: `${o.origin}/cb`, code_verifier: 'v'.repeat(43) }),
  });
  const signInPage = () => fetch(`${o.issuer}/auth?client_id=web&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(`${o.origin}/cb`)}`
    + '&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=s1', { headers: { accept: 'text/html' }, redirect: 'manual' });

  test('the token endpoint and the sign-in page answer 503 with Retry-After, quoting nothing of Redis; the log names Redis, the call and what to check, once a minute', async () => {
    redis.kill('SIGSTOP');
    const token = await tokenRequest();
    expect([token.status, token.headers.get('retry-after')]).toEqual([503, '5']);
    const json = await token.json() as { error: string; error_description: string };
    expect(json.error).toBe('store_unavailable');
    expect(json.error_description).not.toMatch(/redis|AuthorizationCode|within \d+ ms|maxmemory|:7431/i);
    const page = await signInPage();
    expect([page.status, page.headers.get('retry-after')]).toEqual([503, '5']);
    const html = await page.text();
    expect(html).toContain('store_unavailable');
    expect(html).not.toMatch(/redis|Interaction\.|within \d+ ms|:7431/i);

    // one line per failure: the store, the call, what it answered (nothing within the timeout), what to check
    const lines = opLines(warn);
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^\[@openid-express\/op\] Redis did not answer AuthorizationCode\.\w+ within 300 ms: check that Redis is running.*503 store_unavailable while it lasts \(said at most once a minute\)/),
      expect.stringMatching(/^\[@openid-express\/op\] Redis did not answer Interaction\.\w+ within 300 ms/),
    ]));
    expect(lines.join('\n')).not.toContain(PASSWORD);
    expect(lines.join('\n')).not.toContain(CODE);

    // the same failures again within the minute: nothing more
    expect((await tokenRequest()).status).toBe(503);
    expect((await signInPage()).status).toBe(503);
    expect(opLines(warn)).toEqual(lines);

    // a minute later, said again
    const now = Date.now();
    jest.spyOn(Date, 'now').mockImplementation(() => now + 61_000);
    expect((await tokenRequest()).status).toBe(503);
    expect(opLines(warn)).toHaveLength(lines.length + 1);
    expect(opLines(warn).at(-1)).toMatch(/Redis did not answer AuthorizationCode\./);
  });
  // before: "Please try again in a moment … try again in a few seconds" while Redis stayed full (it frees room only as keys expire)
  test('Redis full (maxmemory reached under noeviction): the sign-in page does not promise it passes in seconds, quotes nothing of Redis; the log says what to raise', async () => {
    await client.sendCommand(['CONFIG', 'SET', 'maxmemory-policy', 'noeviction']);
    await client.sendCommand(['CONFIG', 'SET', 'maxmemory', '1']);
    try {
      const page = await signInPage();
      expect([page.status, page.headers.get('retry-after')]).toEqual([503, '5']);
      const html = await page.text();
      expect(html).toContain('<title>This service is unavailable');
      expect(html).toContain('which its operators have been told about. Nothing was lost; please try again later.');
      expect(html).not.toMatch(/briefly|few seconds|in a moment|redis|maxmemory|OOM/i);
      expect(opLines(warn).join('\n')).toMatch(/Redis is unavailable \(OOM command not allowed.*\) for Interaction\.\w+: Redis is out of memory \(maxmemory reached.*raise maxmemory, or find which keys grew.*"Running several instances".*until it is fixed/);
    } finally {
      await client.sendCommand(['CONFIG', 'SET', 'maxmemory', '0']);
    }
  });
});

describe('a session store that fails with its own error', () => {
  let o: RunningOp;
  const env = process.env.NODE_ENV;
  class FailingStore extends session.MemoryStore {
    override get(_sid: string, cb: (err: unknown) => void): void {
      cb(new Error(`ECONNREFUSED redis://user:${PASSWORD}@10.0.0.5:6379 reading sess:AbCdEfGhIjKlMnOpQrStUvWx`));
    }
  }
  beforeAll(async () => {
    process.env.NODE_ENV = 'production';
    const server = await listen();
    server.close();
    await new Promise<void>((resolve) => server.listen(OP_PORT + 1, '127.0.0.1', resolve));
    o = await startOp((_issuer, origin) => ({
      accounts, adapter: memoryAdapter(), authenticators: undefined, storeTimeout: 300, ...generateKeys(),
      session: session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false, store: new FailingStore() }),
      clients: [{ client_id: 'web', client_secret: SECRET, redirect_uris: [`${origin}/cb`] }],
    }), { server, session: false });
  });
  afterAll(async () => {
    process.env.NODE_ENV = env;
    await o?.close();
  });

  test('its 503 page says nothing of it, and the log says what failed without the password or the session id', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const sid = 'a-session-id';
      const cookie = `connect.sid=${encodeURIComponent(`s:${sid}.${createHmac('sha256', 'test-secret-test-secret').update(sid).digest('base64').replace(/=+$/, '')}`)}`;
      const res = await fetch(`${o.issuer}/session/end`, { headers: { accept: 'text/html', cookie } });
      expect([res.status, res.headers.get('retry-after')]).toEqual([503, '5']);
      expect(await res.text()).not.toMatch(/ECONNREFUSED|10\.0\.0\.5|sess:/);
      const lines = opLines(warn).join('\n');
      expect(lines).toMatch(/the session store failed \(ECONNREFUSED redis:\/\/…@10\.0\.0\.5:6379 reading sess:…\): check that it \(e\.g\. Redis\) is running and reachable/);
      expect(lines).not.toContain(PASSWORD);
      expect(lines).not.toContain('AbCdEfGhIjKlMnOpQrStUvWx');
    } finally {
      warn.mockRestore();
    }
  });
});

// before: the 503 was answered but nothing said (the settle's error was dropped on the way, request-scope.ts)
describe('Redis stalls between a code\'s consume and its settle', () => {
  const SETTLE_REDIS_PORT = 7450;
  const SETTLE_OP_PORT = 7451;
  let redis: ChildProcess;
  let client: ReturnType<typeof createClient>;
  let o: RunningOp;
  let stallSettle = false;
  beforeAll(async () => {
    redis = await launch(process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server', SETTLE_REDIS_PORT, []);
    client = createClient({ url: `redis://127.0.0.1:${SETTLE_REDIS_PORT}` }).on('error', () => undefined);
    await client.connect();
    // SETTLE is the one script with one AuthorizationCode key and one argument (the consumer): it never answers
    const send = client.sendCommand.bind(client) as (args: string[], options?: unknown) => Promise<unknown>;
    (client as unknown as { sendCommand: typeof send }).sendCommand = (args, options) => {
      const [command, , keys, key, ...rest] = args;
      const settle = /^EVAL(SHA)?$/i.test(command) && keys === '1' && key.includes('AuthorizationCode') && rest.length === 1;
      return stallSettle && settle ? new Promise(() => undefined) : send(args, options);
    };
    const server = await listen();
    server.close();
    await new Promise<void>((resolve) => server.listen(SETTLE_OP_PORT, '127.0.0.1', resolve));
    o = await startOp((_issuer, origin) => ({
      accounts, adapter: redisAdapter(client, { timeout: 1000 }), ...generateKeys(),
      clients: [{ client_id: 'web', client_secret: SECRET, redirect_uris: [`${origin}/cb`], grant_types: ['authorization_code'] }],
    }), { server });
  }, 60_000);
  afterAll(async () => {
    await o?.close();
    client?.destroy();
    if (redis) await stopProcess(redis, 'SIGTERM');
  });

  test('the token request\'s 503 is said in the log, naming the settle, as every other store failure answered 503 is', async () => {
    const config = await openid.discovery(new URL(o.issuer), 'web', SECRET, openid.ClientSecretBasic(), { execute: [openid.allowInsecureRequests] });
    const verifier = openid.randomPKCECodeVerifier();
    const url = openid.buildAuthorizationUrl(config, {
      redirect_uri: `${o.origin}/cb`, scope: 'openid', state: 's', code_challenge: await openid.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    const page = await signIn(new FormBrowser({ stopAt: (u) => u.pathname === '/cb' }), url.href, { login: ALICE.username, password: ALICE.password });
    const code = new URL(page.stoppedAt!).searchParams.get('code')!;
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      stallSettle = true;
      const res = await fetch(`${o.issuer}/token`, {
        method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: `${o.origin}/cb`, code_verifier: verifier }),
      });
      stallSettle = false;
      expect(res.status).toBe(503);
      expect((await res.json() as { error: string }).error).toBe('store_unavailable');
      expect(opLines(warn)).toEqual([expect.stringMatching(/^\[@openid-express\/op\] Redis did not answer AuthorizationCode\.settle within 1000 ms: .*503 store_unavailable while it lasts/)]);
    } finally {
      warn.mockRestore();
    }
  });
});
