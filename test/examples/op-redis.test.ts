/**
 * examples/op-redis against a real redis-server: the OP's records and sessions land in Redis, and
 * WebFinger points at the issuer.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { RequestListener } from 'node:http';
import request from 'supertest';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { loadExample } from './load.js';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { listenFirst, type Started } from './listen.js';
import { freePort } from '../support/ports.js';
import { repoRoot, runScript, type RunningScript } from './run-script.js';

interface RedisClient {
  sendCommand(args: string[]): Promise<unknown>;
  quit(): Promise<unknown>;
}
const { createIdentityProvider, clientsFromEnv } = loadExample<{
  createIdentityProvider(o: { issuer: string; redis: RedisClient; clients: unknown[]; env: Record<string, string> }): RequestListener;
  clientsFromEnv(env: Record<string, string>): unknown[];
}>('examples/op-redis/app.js');
const { connectRedis } = loadExample<{ connectRedis(url: string): Promise<RedisClient> }>('examples/op-redis/redis.js');

let redisServer: RedisServer;
let redis: RedisClient;
let op: Started;
let issuer: string;
const redirectUri = 'http://localhost:4000/auth/callback/corp';

beforeAll(async () => {
  redisServer = await startRedisServer();
  redis = await connectRedis(redisServer.url);
  op = await listenFirst('localhost');
  issuer = `${op.url}/op`;
  const clients = clientsFromEnv({ CLIENT_ID: 'corp-app', CLIENT_SECRET: 'corp-secret-0123456789', REDIRECT_URIS: redirectUri });
  op.handle(createIdentityProvider({ issuer, redis, clients, env: { SESSION_SECRET: 'test-session-secret' } }));
});

afterAll(async () => {
  await op?.close();
  await redis?.quit();
  await redisServer?.stop();
});

const keys = async (pattern: string) => (await redis.sendCommand(['KEYS', pattern])) as string[];

test('the home page answers and links to discovery', async () => {
  const res = await request(op.url).get('/').expect(200);
  expect(res.text).toContain('/op/.well-known/openid-configuration');
});

test('discovery names the issuer', async () => {
  const res = await request(op.url).get('/op/.well-known/openid-configuration').expect(200);
  expect(res.body.issuer).toBe(issuer);
});

test('WebFinger for a known account points at the issuer', async () => {
  const res = await request(op.url)
    .get('/.well-known/webfinger')
    .query({ resource: `acct:alice@${new URL(op.url).host}`, rel: 'http://openid.net/specs/connect/1.0/issuer' })
    .expect(200);
  expect(res.body.links).toEqual(expect.arrayContaining([expect.objectContaining({ rel: 'http://openid.net/specs/connect/1.0/issuer', href: issuer })]));
});

test('an authorization request keeps its interaction and the login screen\'s state in Redis (no browser session needed yet)', async () => {
  const verifier = randomBytes(32).toString('base64url');
  const agent = request.agent(op.url);
  const res = await agent.get('/op/auth').query({
    client_id: 'corp-app', redirect_uri: redirectUri, response_type: 'code', scope: 'openid',
    state: 's', nonce: 'n', code_challenge_method: 'S256',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
  });
  expect([302, 303]).toContain(res.status);
  const login = await agent.get(new URL(res.headers.location, op.url).pathname).expect(200);
  expect(login.text).toContain('name="password"');
  const uid = new URL(res.headers.location, op.url).pathname.split('/').pop();
  expect(await keys(`oidc:Interaction:${uid}`)).toHaveLength(1);
  expect(await keys(`oidc:OpInteractionState:${uid}`)).toHaveLength(1); // the CSRF token of that login form, per interaction
  expect(await keys('op-session:*')).toHaveLength(0);
});

describe('run as a script (node server.js)', () => {
  jest.setTimeout(90_000);
  let script: RunningScript | undefined;
  afterEach(() => script?.stop());

  test('it connects to REDIS_URL, listens and serves its home page', async () => {
    const started = await runScript('examples/op-redis/server.js', { PORT: '0', REDIS_URL: redisServer.url }, /OP listening on (http:\/\/localhost:\d+)\//);
    script = started.script;
    const res = await fetch(`${started.match[1]}/op/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    expect((await res.json()).issuer).toBe(`${started.match[1]}/op`);
  });

  test('without a reachable Redis it stops at once and says what to do', async () => {
    const port = await freePort();
    const child = spawnSync(process.execPath, [join(repoRoot, 'examples/op-redis/server.js')], {
      env: { ...process.env, PORT: '0', REDIS_URL: `redis://127.0.0.1:${port}` },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.status).toBe(1);
    expect(child.stderr).toContain(`Cannot reach Redis at redis://127.0.0.1:${port}`);
    expect(child.stderr).toContain('Start redis-server or set REDIS_URL');
  });
});
