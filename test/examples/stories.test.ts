/**
 * examples/stories: every usage story (IdPyOIDC's demos, runnable) run as a user runs it,
 * `node examples/stories/run.mjs <name> --json`, from the built packages; the test reads its JSON
 * lines and asserts on the steps (what was sent, what came back, what was verified).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { repoRoot } from './run-script.js';

interface Jwt { header: Record<string, unknown>; claims: Record<string, any> }
interface Exchange {
  request?: { method: string; url: string; via?: string; auth?: Record<string, string>; headers?: Record<string, string>;
    form?: Record<string, any>; json?: Record<string, any>; query?: Record<string, any>; jwts?: Record<string, Jwt> };
  response?: { status?: number; via?: string; method?: string; url?: string; body?: any; params?: Record<string, any>;
    headers?: Record<string, string>; jwts?: Record<string, Jwt> };
  userAgent?: Array<{ method: string; url: string; status: number; label?: string; form?: Record<string, string>; location?: string; page?: string }>;
}
interface Step {
  type: 'step'; n: number; name: string; ok: boolean; exchanges: Exchange[]; checks: Array<{ what: string; ok: boolean }>;
  notes?: string[]; atOP?: string[]; result?: Record<string, any>;
}
interface Run { code: number | null; output: string; stderr: string; lines: any[]; steps: Step[] }

const STORIES = [
  'oauth2-device', // the slowest (it polls every 5 s): first
  'oauth2-cc', 'oauth2-ropc', 'oauth2-code', 'oauth2-add-on-pkce', 'oauth2-add-on-jar', 'oauth2-add-on-par', 'oauth2-add-on-dpop',
  'oauth2-token-exchange', 'oauth2-token-refresh', 'oauth2-token-revocation', 'oidc-code', 'oidc-code-claims',
  'oidc-code-dyn-reg', 'oidc-code-id-token', 'oidc-id-token', 'oidc-add-on-dpop',
];
/** Secrets of the stories' configurations: never printed. */
const SECRETS = ['another password', 'SUPERhemligtlosenord', 'wonderland-42'];

function run(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'examples/stories/run.mjs'), ...args], {
      cwd: repoRoot, env: { ...process.env, NODE_ENV: 'development' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const lines = args.includes('--json') ? output.split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
      resolve({ code, output, stderr, lines, steps: lines.filter((l) => l.type === 'step') });
    });
  });
}

/** Every story, started once, three at a time (the machine has few cores; a story is mostly waiting). */
const runs = new Map<string, Promise<Run>>();
beforeAll(() => {
  const queue = [...STORIES];
  const next = (): Promise<void> => {
    const name = queue.shift();
    if (!name) return Promise.resolve();
    const started = run([name, '--json']);
    runs.set(name, started);
    return started.then(next, next);
  };
  void Promise.all([next(), next(), next()]);
});

/** The story's run, with every step verified and exit code 0 (else the failing checks and stderr). */
async function story(name: string): Promise<Run> {
  while (!runs.has(name)) await new Promise((resolve) => setTimeout(resolve, 50));
  const r = await runs.get(name)!;
  const failed = r.steps.flatMap((s) => s.checks.filter((c) => !c.ok).map((c) => `${s.n} ${s.name}: ${c.what}`));
  if (r.code !== 0 || failed.length) throw new Error(`${name} exited ${r.code}; failed: ${failed.join('\n') || '(no step failed)'}\n${r.stderr}`);
  expect(r.lines.at(-1)).toMatchObject({ type: 'end', story: name, ok: true, steps: r.steps.length, failed: [] });
  for (const secret of SECRETS) expect(r.output).not.toContain(secret);
  return r;
}

const step = (r: Run, name: string, nth = 0): Step => {
  const found = r.steps.filter((s) => s.name === name)[nth];
  if (!found) throw new Error(`no step "${name}" (#${nth}) in ${r.steps.map((s) => s.name).join(', ')}`);
  return found;
};
const exchanges = (s: Step) => s.exchanges.filter((e) => e.request && e.response && !e.request.via);
const to = (s: Step, path: RegExp) => {
  const found = exchanges(s).find((e) => path.test(new URL(e.request!.url).pathname));
  if (!found) throw new Error(`step ${s.name} made no request to ${path}`);
  return found;
};

jest.setTimeout(90_000);

test('client credentials: an RFC 9068 JWT for the resource indicator as aud, client_secret_basic masked', async () => {
  const r = await story('oauth2-cc');
  expect(r.steps.map((s) => s.name)).toEqual(['server_metadata', 'client_credentials']);
  const { request, response } = to(step(r, 'client_credentials'), /\/token$/);
  expect(request).toMatchObject({ method: 'POST', auth: { method: 'client_secret_basic', client_id: 'client_1', client_secret: '••••' },
    form: { grant_type: 'client_credentials', resource: 'https://example.org/appl', scope: 'resourceA' } });
  expect(response!.jwts!.access_token).toMatchObject({ header: { typ: 'at+jwt', alg: 'RS256' },
    claims: { aud: 'https://example.org/appl', sub: 'client_1', client_id: 'client_1', scope: 'resourceA' } });
  expect(response!.body.access_token).toMatch(/^eyJ.{7}…$/); // a prefix, never the token
});

test('password grant: the user\'s password masked, tokens for the user, a wrong password refused', async () => {
  const r = await story('oauth2-ropc');
  expect(r.code).toBe(0);
  expect(r.steps.map((s) => s.name)).toEqual(['server_metadata', 'password_grant', 'password_grant (wrong password)']);
  const { request } = to(step(r, 'password_grant'), /\/token$/);
  expect(request).toMatchObject({ method: 'POST', auth: { method: 'client_secret_basic', client_id: 'client_1', client_secret: '••••' },
    form: { grant_type: 'password', username: 'alice', password: '••••' } });
  expect(step(r, 'password_grant (wrong password)').checks).toEqual([expect.objectContaining({ ok: true, what: expect.stringContaining('refused with invalid_grant') })]);
});

test('code flow: client_secret_post masked, no PKCE, the ID token verified', async () => {
  const r = await story('oauth2-code');
  expect(r.steps.map((s) => s.name)).toEqual(['server_metadata', 'authorization', 'accesstoken']);
  const authorization = step(r, 'authorization');
  expect(authorization.exchanges[0].request!.query).not.toHaveProperty('code_challenge');
  const ua = authorization.exchanges.find((e) => e.userAgent)!.userAgent!;
  expect(ua.find((h) => h.label === 'sign in')!.form).toMatchObject({ login: 'alice', password: '••••' });
  const { request, response } = to(step(r, 'accesstoken'), /\/token$/);
  expect(request!.auth).toEqual({ method: 'client_secret_post', client_id: 'client', client_secret: '••••' });
  expect(request!.form).not.toHaveProperty('code_verifier');
  expect(response!.jwts!.id_token.claims).toMatchObject({ sub: 'alice', aud: 'client' });
  expect(step(r, 'accesstoken').checks.map((c) => c.what)).toContainEqual(expect.stringMatching(/^id_token: signature \(RS256\)/));
});

test('PKCE: S256 challenge, the verifier at the token endpoint, a wrong verifier refused', async () => {
  const r = await story('oauth2-add-on-pkce');
  expect(r.steps.map((s) => s.name)).toEqual(['server_metadata', 'authorization', 'accesstoken', 'authorization', 'accesstoken (wrong code_verifier)']);
  expect(step(r, 'authorization').exchanges[0].request!.query).toMatchObject({ code_challenge_method: 'S256', code_challenge: expect.any(String) });
  expect(to(step(r, 'accesstoken'), /\/token$/).request!.form).toHaveProperty('code_verifier');
  const refused = to(step(r, 'accesstoken (wrong code_verifier)'), /\/token$/);
  expect(refused.response).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  expect(step(r, 'accesstoken (wrong code_verifier)').checks[0]).toMatchObject({ ok: true, what: expect.stringContaining('refused with invalid_grant') });
});

test('JAR: the request object signed with the client key, only client_id/response_type/scope beside it; private_key_jwt', async () => {
  const r = await story('oauth2-add-on-jar');
  const { query, jwts } = step(r, 'authorization').exchanges[0].request!;
  expect(Object.keys(query!).sort()).toEqual(['client_id', 'request', 'response_type', 'scope']);
  expect(jwts!.request).toMatchObject({ header: { alg: 'RS256', kid: 'client-sig-1', typ: 'oauth-authz-req+jwt' },
    claims: { iss: 'client', client_id: 'client', response_type: 'code', code_challenge_method: 'S256', nonce: expect.any(String) } });
  expect(jwts!.request.claims.aud).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/op$/);
  const token = to(step(r, 'accesstoken'), /\/token$/).request!;
  expect(token.auth).toEqual({ method: 'private_key_jwt', client_id: 'client', client_assertion: '(JWT, decoded below)' });
  expect(token.jwts!.client_assertion).toMatchObject({ header: { alg: 'RS256', kid: 'client-sig-1' }, claims: { iss: 'client', sub: 'client' } });
});

test('PAR: the parameters pushed with client authentication, the browser carrying only the request_uri', async () => {
  const r = await story('oauth2-add-on-par');
  const authorization = step(r, 'authorization');
  const pushed = to(authorization, /\/op\/request$/);
  expect(pushed.request).toMatchObject({ method: 'POST', auth: { method: 'client_secret_basic', client_secret: '••••' },
    form: { response_type: 'code', code_challenge_method: 'S256', state: expect.any(String) } });
  expect(pushed.response).toMatchObject({ status: 201, body: { request_uri: expect.stringMatching(/^urn:ietf:params:oauth:request_uri:/) } });
  const front = authorization.exchanges.find((e) => e.request?.via)!.request!;
  expect(front.query).toEqual({ client_id: 'client', request_uri: pushed.response!.body.request_uri });
});

test('DPoP: the access token bound to the proof key (cnf.jkt), taken by the resource server with a proof, refused as Bearer', async () => {
  const r = await story('oauth2-add-on-dpop');
  const token = to(step(r, 'accesstoken'), /\/token$/);
  const proof = token.request!.jwts!.DPoP;
  expect(proof.header).toMatchObject({ typ: 'dpop+jwt', alg: 'ES256' });
  expect(token.response).toMatchObject({ status: 200, body: { token_type: 'DPoP' } });
  const jkt = await calculateJwkThumbprint(proof.header.jwk as JWK);
  expect(token.response!.jwts!.access_token.claims.cnf).toEqual({ jkt });
  const resource = to(step(r, 'resource'), /\/api\/resource$/);
  expect(resource.request!.headers!.authorization).toMatch(/^DPoP /);
  expect(resource.request!.jwts!.DPoP.claims).toMatchObject({ htm: 'GET', ath: expect.any(String) });
  expect(await calculateJwkThumbprint(resource.request!.jwts!.DPoP.header.jwk as JWK)).toBe(jkt); // the same key
  expect(resource.response).toMatchObject({ status: 200, body: { sub: 'alice' } });
  const bearer = to(step(r, 'resource (the token as Bearer)'), /\/api\/resource$/);
  expect(bearer.request!.headers!.authorization).toMatch(/^Bearer /);
  expect(bearer.response).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
});

test('token exchange: the new token\'s aud, act and narrower scope; the policy hook asked, and its "no" is access_denied', async () => {
  const r = await story('oauth2-token-exchange');
  const exchange = step(r, 'token_exchange');
  const { request, response } = to(exchange, /\/token$/);
  expect(request!.form).toMatchObject({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', audience: 'backend', scope: 'read',
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token' });
  expect(request!.jwts!.subject_token.claims.aud).toBe('https://example.org/appl');
  expect(response!.jwts!.access_token.claims).toMatchObject({ aud: 'backend', sub: 'alice', scope: 'read', act: { sub: 'client' }, email: 'alice@example.org' });
  expect(exchange.atOP).toEqual([expect.stringMatching(/resource: https:\/\/backend\.example\.org, scope: read \}\) → true$/)]);
  const refused = step(r, 'token_exchange (refused by the policy)');
  expect(to(refused, /\/token$/).response).toMatchObject({ status: 400, body: { error: 'access_denied' } });
  expect(refused.atOP).toEqual([expect.stringMatching(/vault\.example\.org.*→ false$/)]);
});

test('refresh: a narrower scope asked and granted', async () => {
  const r = await story('oauth2-token-refresh');
  const { request, response } = to(step(r, 'refresh_token'), /\/token$/);
  expect(request!.form).toMatchObject({ grant_type: 'refresh_token', scope: 'openid foobar', refresh_token: expect.stringMatching(/…$/) });
  expect(response!.body.scope).toBe('openid foobar');
  expect(to(step(r, 'accesstoken'), /\/token$/).response!.body.scope).toBe('openid offline_access profile foobar');
});

test('revocation and introspection: active, revoked, inactive, the refresh grant refused', async () => {
  const r = await story('oauth2-token-revocation');
  expect(r.steps.map((s) => s.name)).toEqual(['server_metadata', 'authorization', 'accesstoken', 'introspection', 'introspection',
    'token_revocation', 'introspection', 'introspection', 'refresh_token (revoked)']);
  expect(to(step(r, 'introspection', 0), /introspection$/).response!.body).toMatchObject({ active: true, sub: 'alice', client_id: 'client' });
  expect(to(step(r, 'token_revocation'), /revocation$/)).toMatchObject({ request: { form: { token_type_hint: 'refresh_token' } }, response: { status: 200 } });
  expect(to(step(r, 'introspection', 2), /introspection$/).response!.body).toEqual({ active: false });
  expect(to(step(r, 'introspection', 3), /introspection$/).response!.body).toEqual({ active: false });
  expect(to(step(r, 'refresh_token (revoked)'), /\/token$/).response).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
});

test('OIDC code: discovery, the ID token, userinfo with the access token', async () => {
  const r = await story('oidc-code');
  expect(r.steps.map((s) => s.name)).toEqual(['provider_info', 'authorization', 'accesstoken', 'userinfo']);
  const userinfo = to(step(r, 'userinfo'), /\/me$/);
  expect(userinfo.request!.headers!.authorization).toMatch(/^Bearer /);
  expect(userinfo.response!.body).toMatchObject({ sub: 'alice', name: 'Alice Liddell', email: 'alice@example.org' });
});

test('claims parameter: nickname in the ID token, name and email from userinfo, nothing else', async () => {
  const r = await story('oidc-code-claims');
  const query = step(r, 'authorization').exchanges[0].request!.query!;
  expect(query.scope).toBe('openid');
  expect(JSON.parse(query.claims)).toEqual({ id_token: { nickname: null }, userinfo: { name: null, email: null, email_verified: null } });
  const idToken = to(step(r, 'accesstoken'), /\/token$/).response!.jwts!.id_token.claims;
  expect(idToken.nickname).toBe('Ally');
  expect(idToken).not.toHaveProperty('email');
  expect(Object.keys(to(step(r, 'userinfo'), /\/me$/).response!.body).sort()).toEqual(['email', 'email_verified', 'name', 'sub']);
});

test('dynamic registration: WebFinger, discovery, registration, then a login with the registered client', async () => {
  const r = await story('oidc-code-dyn-reg');
  const discovery = step(r, 'webfinger + provider_info + registration');
  expect(to(discovery, /webfinger$/).response!.body.links[0].rel).toBe('http://openid.net/specs/connect/1.0/issuer');
  const registration = to(discovery, /\/op\/reg$/);
  expect(registration.request).toMatchObject({ method: 'POST', json: { client_name: 'Usage story RP', response_types: ['code'] } });
  expect(registration.response).toMatchObject({ status: 201, body: { client_id: expect.any(String), client_secret: '••••', registration_access_token: '••••' } });
  const clientId = registration.response!.body.client_id;
  expect(step(r, 'authorization').exchanges.find((e) => e.request?.via)!.request!.query!.client_id).toBe(clientId);
  expect(to(step(r, 'accesstoken + userinfo'), /\/token$/).response!.jwts!.id_token.claims.aud).toBe(clientId);
});

test('hybrid: code and ID token posted (form_post), c_hash checked before the code is traded', async () => {
  const r = await story('oidc-code-id-token');
  const authorization = step(r, 'authorization');
  const front = authorization.exchanges.find((e) => e.response?.via)!.response!;
  expect(front).toMatchObject({ method: 'POST', params: { code: expect.any(String), id_token: expect.any(String) } });
  expect(front.jwts!.id_token.claims.c_hash).toEqual(expect.any(String));
  expect(authorization.checks.map((c) => c.what)).toContainEqual(expect.stringMatching(/^id_token: c_hash \S+ = left half of SHA-256\(code\)$/));
  expect(to(step(r, 'accesstoken'), /\/token$/).response!.status).toBe(200);
});

test('implicit: an ID token only, posted by the OP\'s form_post page, the claims inside', async () => {
  const r = await story('oidc-id-token');
  const authorization = step(r, 'authorization');
  expect(authorization.exchanges[0].request!.query).toMatchObject({ response_type: 'id_token', response_mode: 'form_post' });
  const front = authorization.exchanges.find((e) => e.response?.via)!.response!;
  expect(front.via).toMatch(/^form_post/);
  expect(Object.keys(front.params!).sort()).toEqual(['id_token', 'state']);
  expect(front.jwts!.id_token.claims).toMatchObject({ sub: 'alice', name: 'Alice Liddell', email: 'alice@example.org' });
  expect(exchanges(step(r, 'id_token')).every((e) => !/\/token$/.test(e.request!.url))).toBe(true); // no token endpoint
});

test('OIDC with DPoP: the token bound (introspection cnf.jkt), userinfo with a DPoP proof', async () => {
  const r = await story('oidc-add-on-dpop');
  const proof = to(step(r, 'accesstoken'), /\/token$/).request!.jwts!.DPoP;
  const info = to(step(r, 'introspection'), /introspection$/).response!.body;
  expect(info).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: await calculateJwkThumbprint(proof.header.jwk as JWK) } });
  const userinfo = to(step(r, 'userinfo'), /\/me$/);
  expect(userinfo.request!.headers!.authorization).toMatch(/^DPoP /);
  expect(userinfo.request!.jwts!.DPoP.claims).toMatchObject({ htm: 'GET', htu: expect.stringMatching(/\/op\/me$/) });
  expect(userinfo.response).toMatchObject({ status: 200, body: { sub: 'alice' } });
});

test('device flow: user code and verification URI, the user at the OP\'s page, the device polling', async () => {
  const r = await story('oauth2-device');
  const started = to(step(r, 'device_authorization'), /\/device\/auth$/);
  expect(started.request!.auth).toEqual({ method: 'none', client_id: 'living-room-tv' });
  const { user_code: userCode, verification_uri: uri } = started.response!.body;
  expect(userCode).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
  expect(step(r, 'device_authorization').notes).toEqual([`The TV shows: "Go to ${uri} and enter ${userCode}"`]);
  const polling = step(r, 'device_access_token');
  const ua = polling.exchanges.find((e) => e.userAgent)!.userAgent!;
  expect(ua[0]).toMatchObject({ method: 'GET', url: uri });
  expect(ua.find((h) => h.label === 'type the user code')!.form).toMatchObject({ user_code: userCode });
  expect(ua.at(-1)!.page).toMatch(/^Device signed in/);
  const polls = exchanges(polling).filter((e) => e.request!.form?.grant_type === 'urn:ietf:params:oauth:grant-type:device_code');
  expect(polls[0].response).toMatchObject({ status: 400, body: { error: 'authorization_pending' } });
  expect(polls.at(-1)!.response).toMatchObject({ status: 200, body: { token_type: 'Bearer' } });
  expect(polls.at(-1)!.response!.jwts!.id_token.claims).toMatchObject({ sub: 'alice', aud: 'living-room-tv' });
});

test('--list names every story, one per seed demo (none missing); text output fits 80 columns', async () => {
  const list = await run(['--list', '--json']);
  expect(list.code).toBe(0);
  expect(list.lines.filter((l) => l.type === 'story').map((l) => l.name).sort()).toEqual([...STORIES].sort());
  expect(list.lines.filter((l) => l.type === 'missing')).toEqual([]);
  expect(list.lines.filter((l) => l.type === 'story').length).toBe(17);
  const text = await run(['oauth2_add_on_dpop.py']); // a seed demo's name works too
  expect(text.code).toBe(0);
  expect(text.output).toContain('-- VERIFIED --');
  expect(text.output.split('\n').filter((l) => [...l].length > 80)).toEqual([]);
  const unknown = await run(['oauth2-ccc']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('did you mean "oauth2-cc"?');
});
