/**
 * Requests for every OP and RP route, then mutated: other methods and letter case, duplicated and
 * array parameters, huge values, bad escapes and UTF-8, odd content types and bodies, forged and
 * cross-site cookies, malformed Host headers and request-line authorities.
 */
import type { Rng } from './rng.js';
import type { RawRequest } from './raw-http.js';
import { PUBLIC_CLIENT, RP_CLIENT, SERVICE_CLIENT, type FuzzWorld } from './servers.js';

export interface FuzzRequest extends RawRequest {
  /** Which server: the raw socket goes there whatever the Host header says. */
  to: 'op' | 'rp';
  /** The route as catalogued, e.g. "OP /token". */
  route: string;
  mutations: string[];
  /** Carries the victim's cookies (cross-site): checked for a change of the victim's session. */
  victim?: boolean;
}

/** A request before serialisation: parameters already percent-encoded, so mutations can write raw text. */
interface Draft {
  to: 'op' | 'rp';
  route: string;
  method: string;
  path: string;
  query: Array<[string, string]>;
  headers: Array<[string, string]>;
  body?: { type: 'form' | 'json' | 'raw'; fields?: Array<[string, string]>; json?: unknown; raw?: Buffer; contentType?: string };
  mutations: string[];
  victim?: boolean;
  /** Replaces the request-line target (absolute-form authorities). */
  target?: string;
}

const enc = encodeURIComponent;
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
const EVIL = 'http://evil.example';

type Route = (w: FuzzWorld, r: Rng) => Omit<Draft, 'mutations' | 'headers'> & { headers?: Array<[string, string]> };

function authParams(w: FuzzWorld, r: Rng): Array<[string, string]> {
  const client = r.pick([RP_CLIENT.id, PUBLIC_CLIENT, 'unknown-client', '']);
  const params: Array<[string, string]> = [
    ['client_id', client],
    ['redirect_uri', r.pick([`${w.rp.origin}/auth/callback/op`, `${EVIL}/cb`, 'not a url', `${w.rp.origin}/public/callback`])],
    ['response_type', r.pick(['code', 'id_token', 'code id_token', 'token', 'none', ''])],
    ['scope', r.pick(['openid', 'openid email profile offline_access', 'api:read', 'openid unknown', ''])],
    ['state', r.pick(['st', '', 'x'.repeat(300)])],
  ];
  if (r.chance(0.6)) params.push(['nonce', r.pick(['n-1', '', 'n'.repeat(500)])]);
  if (r.chance(0.6)) params.push(['code_challenge', r.pick(['E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', 'short', ''])], ['code_challenge_method', r.pick(['S256', 'plain', 'foo'])]);
  if (r.chance(0.3)) params.push([r.pick(['prompt', 'max_age', 'login_hint', 'claims', 'request', 'request_uri', 'ui_locales', 'response_mode', 'id_token_hint']),
    r.pick(['none', 'login consent', '-1', '{"userinfo":{"email":null}}', '{', 'eyJhbGciOiJub25lIn0.e30.', 'urn:ietf:params:oauth:request_uri:x', 'form_post', 'fragment'])]);
  return params.map(([k, v]) => [k, enc(v)]);
}

function tokenFields(w: FuzzWorld, r: Rng): Array<[string, string]> {
  const grant = r.pick(['authorization_code', 'refresh_token', 'client_credentials', 'password', 'urn:ietf:params:oauth:grant-type:device_code', '']);
  const fields: Array<[string, string]> = [['grant_type', grant]];
  if (grant === 'authorization_code') fields.push(['code', r.pick(['abc', '', 'x'.repeat(100)])], ['redirect_uri', `${w.rp.origin}/auth/callback/op`], ['code_verifier', r.pick(['v'.repeat(43), ''])]);
  if (grant === 'refresh_token') fields.push(['refresh_token', r.pick(['forged', ''])]);
  if (grant === 'client_credentials') fields.push(['scope', r.pick(['api:read', 'openid', ''])]);
  if (r.chance(0.3)) fields.push(['client_id', r.pick([RP_CLIENT.id, SERVICE_CLIENT.id, PUBLIC_CLIENT])], ['client_secret', r.pick(['wrong', SERVICE_CLIENT.secret])]);
  return fields.map(([k, v]) => [k, enc(v)]);
}

const clientAuth = (r: Rng): Array<[string, string]> => r.pick([
  [['authorization', basic(SERVICE_CLIENT.id, SERVICE_CLIENT.secret)]],
  [['authorization', basic(RP_CLIENT.id, RP_CLIENT.secret)]],
  [['authorization', basic(RP_CLIENT.id, 'wrong')]],
  [],
]);

const form = (fields: Array<[string, string]>) => ({ type: 'form' as const, fields });

/** A real or a fake interaction uid, with its browser's cookies when real. */
function interaction(w: FuzzWorld, r: Rng): { uid: string; headers: Array<[string, string]>; csrf: string } {
  if (r.chance(0.35)) return { uid: r.pick(['fake-uid', 'x'.repeat(200), '..%2F..%2Fjwks', '%00', 'ABCDEFGHIJKLMNOPQRSTU']), headers: [], csrf: 'guess' };
  const it = r.pick(w.interactions);
  return { uid: it.uid, headers: r.chance(0.8) ? [['cookie', it.cookie]] : [], csrf: r.chance(0.7) ? it.csrf ?? 'none' : 'guess' };
}

const OP_ROUTES: Record<string, Route> = {
  'OP discovery': () => ({ to: 'op', route: 'OP discovery', method: 'GET', path: '/op/.well-known/openid-configuration', query: [] }),
  'OP RFC 8414 metadata': () => ({ to: 'op', route: 'OP RFC 8414 metadata', method: 'GET', path: '/.well-known/oauth-authorization-server/op', query: [] }),
  'OP jwks': () => ({ to: 'op', route: 'OP jwks', method: 'GET', path: '/op/jwks', query: [] }),
  'OP auth GET': (w, r) => ({ to: 'op', route: 'OP auth GET', method: 'GET', path: '/op/auth', query: authParams(w, r) }),
  'OP auth POST': (w, r) => ({ to: 'op', route: 'OP auth POST', method: 'POST', path: '/op/auth', query: [], body: form(authParams(w, r)) }),
  'OP token': (w, r) => ({ to: 'op', route: 'OP token', method: 'POST', path: '/op/token', query: [], headers: clientAuth(r), body: form(tokenFields(w, r)) }),
  'OP userinfo': (w, r) => ({
    to: 'op', route: 'OP userinfo', method: r.pick(['GET', 'POST']), path: '/op/me', query: [],
    headers: [['authorization', r.pick([`Bearer ${w.serviceToken}`, 'Bearer forged', 'Bearer', `DPoP ${w.serviceToken}`])]],
  }),
  'OP introspection': (w, r) => ({
    to: 'op', route: 'OP introspection', method: 'POST', path: '/op/token/introspection', query: [], headers: clientAuth(r),
    body: form([['token', enc(r.pick([w.serviceToken, 'forged', '']))], ['token_type_hint', r.pick(['access_token', 'refresh_token', 'foo'])]]),
  }),
  'OP revocation': (w, r) => ({
    to: 'op', route: 'OP revocation', method: 'POST', path: '/op/token/revocation', query: [], headers: clientAuth(r),
    // never the victim's tokens: revoking them would be a legitimate change, not a bug
    body: form([['token', enc(r.pick(['forged', '', 'x'.repeat(2000)]))], ['token_type_hint', r.pick(['access_token', 'refresh_token'])]]),
  }),
  'OP registration': (w, r) => ({
    to: 'op', route: 'OP registration', method: 'POST', path: '/op/reg', query: [],
    body: { type: 'json', json: r.pick([
      { redirect_uris: [`${w.rp.origin}/cb`], client_name: 'fuzz' },
      { redirect_uris: ['not a url'] },
      { redirect_uris: [`${w.rp.origin}/cb`], token_endpoint_auth_method: 'none', grant_types: ['implicit'] },
      { redirect_uris: [`${w.rp.origin}/cb`], jwks_uri: 'http://127.0.0.1:1/jwks', sector_identifier_uri: 'http://127.0.0.1:1/s' },
      { redirect_uris: 'x', client_id: RP_CLIENT.id },
      [],
      null,
    ]) },
  }),
  'OP registration read': (w, r) => ({
    to: 'op', route: 'OP registration read', method: r.pick(['GET', 'PUT', 'DELETE']), path: `/op/reg/${r.pick([RP_CLIENT.id, 'nope'])}`, query: [],
    headers: [['authorization', r.pick(['Bearer forged', 'Bearer '])]],
  }),
  'OP PAR': (w, r) => ({ to: 'op', route: 'OP PAR', method: 'POST', path: '/op/request', query: [], headers: clientAuth(r), body: form(authParams(w, r)) }),
  'OP end_session': (w, r) => ({
    to: 'op', route: 'OP end_session', method: r.pick(['GET', 'POST']), path: '/op/session/end',
    query: [['client_id', enc(r.pick([RP_CLIENT.id, 'nope']))], ['post_logout_redirect_uri', enc(r.pick([`${w.rp.origin}/`, `${EVIL}/`]))], ['id_token_hint', enc(r.pick(['forged', 'a.b.c']))], ['state', 'x']]
      .slice(0, r.int(0, 4)) as Array<[string, string]>,
  }),
  'OP end_session confirm': (w, r) => ({
    to: 'op', route: 'OP end_session confirm', method: 'POST', path: '/op/session/end/confirm', query: [],
    body: form([['xsrf', r.pick(['guess', ''])], ['csrf', r.pick(['guess', ''])], ['logout', 'yes']]),
  }),
  'OP interaction': (w, r) => {
    const it = interaction(w, r);
    return { to: 'op', route: 'OP interaction', method: 'GET', path: `/op/interaction/${it.uid}`, query: [], headers: it.headers };
  },
  'OP interaction login': (w, r) => {
    const it = interaction(w, r);
    return {
      to: 'op', route: 'OP interaction login', method: 'POST', path: `/op/interaction/${it.uid}/login`, query: [], headers: it.headers,
      body: form([['csrf', enc(it.csrf)], ['authenticator', r.pick(['password', 'nope', ''])], ['login', r.pick(['alice', 'bob', 'nobody', ''])], ['password', r.pick(['wrong', '', 'p'.repeat(5000)])]]),
    };
  },
  'OP interaction confirm': (w, r) => {
    const it = interaction(w, r);
    return { to: 'op', route: 'OP interaction confirm', method: 'POST', path: `/op/interaction/${it.uid}/confirm`, query: [], headers: it.headers, body: form([['csrf', enc(it.csrf)]]) };
  },
  'OP interaction abort': (w, r) => {
    const it = interaction(w, r);
    return { to: 'op', route: 'OP interaction abort', method: 'POST', path: `/op/interaction/${it.uid}/abort`, query: [], headers: it.headers, body: form([['csrf', enc(it.csrf)]]) };
  },
  'OP webfinger': (w, r) => {
    const host = new URL(w.op.origin).host;
    return {
      to: 'op', route: 'OP webfinger', method: 'GET', path: '/.well-known/webfinger',
      query: [['resource', r.pick([enc(`acct:alice@${host}`), enc(`https://${host}/alice`), `https://${host}/%zz`, enc('acct:@'), enc('acct:nobody@evil.example'), ''])],
        ...(r.chance(0.5) ? [['rel', enc('http://openid.net/specs/connect/1.0/issuer')] as [string, string]] : [])],
    };
  },
};

const RP_ROUTES: Record<string, Route> = {
  'RP login': (w, r) => ({ to: 'rp', route: 'RP login', method: 'GET', path: `/auth/login/${r.pick(['op', 'nope', '__proto__', 'constructor'])}`, query: [['returnTo', enc(r.pick(['/me', '//evil.example', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)']))]] }),
  'RP dynamic login': (w, r) => ({
    to: 'rp', route: 'RP dynamic login', method: 'GET', path: '/auth/login',
    query: [['identifier', enc(r.pick([`alice@${new URL(w.op.origin).host}`, w.op.issuer, 'acct:x@127.0.0.1:1', 'http://127.0.0.1:1/', '@', '', 'alice@[::1', `${'x'.repeat(300)}@127.0.0.1:1`]))]],
  }),
  'RP callback GET': (w, r) => ({
    to: 'rp', route: 'RP callback GET', method: 'GET', path: `/auth/callback/${r.pick(['op', 'nope'])}`,
    query: [['code', r.pick(['abc', ''])], ['state', r.pick(['st', ''])], ['iss', enc(r.pick([w.op.issuer, EVIL]))], ['error', r.pick(['access_denied', ''])]].slice(0, r.int(0, 4)) as Array<[string, string]>,
  }),
  'RP callback POST': (w, r) => ({
    to: 'rp', route: 'RP callback POST', method: 'POST', path: `/auth/callback/${r.pick(['op', 'nope'])}`, query: [],
    body: form([['code', 'abc'], ['state', r.pick(['st', ''])], ['id_token', 'a.b.c'], ['iss', enc(w.op.issuer)]]),
  }),
  'RP refresh': (w, r) => ({ to: 'rp', route: 'RP refresh', method: 'POST', path: '/auth/refresh', query: [], body: r.chance(0.5) ? { type: 'json', json: { scope: r.pick(['openid', '', 1, null]) } } : form([['scope', 'openid']]) }),
  'RP logout': (w, r) => ({ to: 'rp', route: 'RP logout', method: r.pick(['GET', 'POST']), path: '/auth/logout', query: [['returnTo', enc(r.pick(['/', '//evil.example', 'https://evil.example']))]] }),
  'RP backchannel logout': (w, r) => ({
    to: 'rp', route: 'RP backchannel logout', method: 'POST', path: `/auth/backchannel-logout/${r.pick(['op', 'nope'])}`, query: [],
    body: form([['logout_token', r.pick(['eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.', 'a.b.c', '', 'x'.repeat(3000)])]]),
  }),
  'RP third-party login': (w, r) => ({
    to: 'rp', route: 'RP third-party login', method: r.pick(['GET', 'POST']), path: r.pick(['/auth/login/op', '/auth/login']),
    query: [['iss', enc(r.pick([w.op.issuer, EVIL, '', `${w.op.issuer}/`]))], ['target_link_uri', enc(r.pick([`${w.rp.origin}/me`, `${EVIL}/`, 'javascript:alert(1)', '//evil.example', '']))],
      ['login_hint', enc(r.pick(['alice', '', 'x'.repeat(2000)]))]].slice(0, r.int(1, 3)) as Array<[string, string]>,
  }),
  'RP frontchannel logout': (w, r) => ({
    to: 'rp', route: 'RP frontchannel logout', method: 'GET', path: `/auth/frontchannel-logout/${r.pick(['op', 'nope'])}`,
    query: [['iss', enc(r.pick([w.op.issuer, EVIL, '']))], ['sid', r.pick(['abc', '', 'x'.repeat(400)])]].slice(0, r.int(0, 2)) as Array<[string, string]>,
  }),
  'RP jwks': () => ({ to: 'rp', route: 'RP jwks', method: 'GET', path: '/auth/jwks', query: [] }),
  'RP request object': (w, r) => ({ to: 'rp', route: 'RP request object', method: 'GET', path: `/auth/request/${r.pick(['x'.repeat(32), 'nope', '..%2F..', '%zz'])}`, query: [] }),
  'RP providers': () => ({ to: 'rp', route: 'RP providers', method: 'GET', path: '/auth/providers', query: [] }),
  'RP requireAuth route': () => ({ to: 'rp', route: 'RP requireAuth route', method: 'GET', path: '/me', query: [] }),
};

export const ROUTES = { ...OP_ROUTES, ...RP_ROUTES };

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'get'];
export const BAD_HOSTS: Array<string | null> = ['127.0.0.1:99999', 'a b', '', null, '[::1', '127.0.0.1:-1', 'évil.example', 'x'.repeat(300), '127.0.0.1:80:80', 'user@127.0.0.1', '%zz'];

function mutateCase(path: string, r: Rng): string {
  const parts = path.split('/');
  const i = r.int(1, parts.length - 1);
  parts[i] = r.chance(0.5) ? parts[i]!.toUpperCase() : [...parts[i]!].map((c) => (r.chance(0.5) ? c.toUpperCase() : c)).join('');
  return parts.join('/');
}

/** A parameter list of the draft to mutate (query, or the form body). */
function params(d: Draft): Array<[string, string]> {
  if (d.body?.type === 'form' && d.body.fields) return d.body.fields;
  return d.query;
}

const MUTATIONS: Record<string, (d: Draft, r: Rng, w: FuzzWorld) => void> = {
  method: (d, r) => { d.method = r.pick(METHODS); },
  'letter case': (d, r) => { d.path = mutateCase(d.path, r); },
  'duplicated parameter': (d, r) => {
    const p = params(d);
    if (p.length) { const [k] = r.pick(p); p.push([k, r.pick(['dup', '', 'x'.repeat(50)])]); } else p.push(['a', '1'], ['a', '2']);
  },
  'array parameter': (d, r) => {
    const p = params(d);
    const i = p.length ? r.int(0, p.length - 1) : -1;
    if (i >= 0) p[i] = [`${p[i]![0]}${r.pick(['[]', '[0]', '[a][b]', '%5B%5D'])}`, p[i]![1]];
    else p.push(['x[]', '1']);
  },
  'huge value': (d, r) => {
    const size = r.pick([4096, 20000, 70000]);
    if (d.body && r.chance(0.5)) { d.body = { type: 'raw', raw: Buffer.alloc(r.pick([200_000, 1_200_000]), 'a'), contentType: d.body.type === 'json' ? 'application/json' : 'application/x-www-form-urlencoded' }; return; }
    const p = params(d);
    if (p.length) p[r.int(0, p.length - 1)]![1] = 'A'.repeat(size); else p.push(['q', 'A'.repeat(size)]);
  },
  'malformed escape': (d, r) => {
    const bad = r.pick(['%zz', '%', '%E0%A4%A', '%%', '%u0041']);
    if (r.chance(0.3)) { d.path += bad; return; }
    const p = params(d);
    if (p.length) { const i = r.int(0, p.length - 1); p[i] = r.chance(0.3) ? [`${p[i]![0]}${bad}`, p[i]![1]] : [p[i]![0], `${p[i]![1]}${bad}`]; } else p.push(['x', bad]);
  },
  'invalid UTF-8': (d, r) => {
    const bad = r.pick(['%C3%28', '%FF%FE', '%ED%A0%80', '%C0%AF', '\xff\xfe', '\xc3']);
    if (r.chance(0.3)) { d.path += bad; return; }
    const p = params(d);
    if (p.length) { const i = r.int(0, p.length - 1); p[i] = [p[i]![0], `${p[i]![1]}${bad}`]; } else p.push(['x', bad]);
  },
  'odd content type': (d, r) => {
    d.body ??= form([['a', 'b']]);
    d.body.contentType = r.pick(['text/plain', 'application/json', 'multipart/form-data', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded; charset=utf-16',
      'application/json; charset=latin1', 'application/xml', '', ';;;', 'application/x-www-form-urlencoded, application/json', 'application/jwt']);
    if (d.method === 'GET') d.method = 'POST';
  },
  'malformed body': (d, r) => {
    const raw = r.pick(['{"a":', '{"__proto__":{"admin":true}}', '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]', 'a=%zz&b', '&&&==&', `${'a[b]'.repeat(200)}=1`,
      'constructor[prototype][x]=1', '\x00\x01\x02', 'null', '"string"', 'a'.repeat(100) + '=' + '%'.repeat(50)]);
    d.body = { type: 'raw', raw: Buffer.from(raw, 'latin1'), contentType: r.pick(['application/json', 'application/x-www-form-urlencoded']) };
    if (d.method === 'GET') d.method = 'POST';
  },
  'forged cookie': (d, r) => {
    d.headers.push(['cookie', r.pick([
      'sid=s%3Aforged.signature', 'op.sid=s%3Aforged.AAAA', '_session=forged; _session.sig=forged', '_interaction=x; _interaction.sig=y',
      'sid=' + 'a'.repeat(4000), 'sid=%zz', 'sid=s%3A' + encodeURIComponent('../../etc'), '=;=;;', 'sid="unterminated', '__proto__=1; constructor=2',
    ])]);
  },
  'victim cookie, cross-site': (d, r, w) => {
    d.victim = true;
    d.headers = d.headers.filter(([k]) => k !== 'cookie');
    d.headers.push(['cookie', d.to === 'rp' ? w.victim.rpCookie : w.victim.opCookie], ['origin', r.pick([EVIL, 'null'])], ['sec-fetch-site', 'cross-site']);
    if (r.chance(0.5)) d.headers.push(['referer', `${EVIL}/attack`]);
  },
  'malformed Host': (d, r) => {
    d.headers = d.headers.filter(([k]) => k !== 'host');
    const host = r.pick(BAD_HOSTS);
    if (host !== null) d.headers.unshift(['host', host]);
  },
  'request-line authority': (d, r) => {
    d.target = `http://${r.pick(['127.0.0.1:99999', 'a b', 'evil.example', '[::1', ''])}${d.path}`;
  },
  'bad authorization': (d, r) => {
    d.headers = d.headers.filter(([k]) => k !== 'authorization');
    d.headers.push(['authorization', r.pick(['Basic !!!', 'Basic ' + Buffer.from(':').toString('base64'), 'Basic ' + Buffer.from('%zz:%zz').toString('base64'),
      'Bearer', 'Bearer a b', 'Basic', 'DPoP x', 'Negotiate x', 'Basic ' + Buffer.from(`${RP_CLIENT.id}`).toString('base64')])]);
  },
  accept: (d, r) => { d.headers.push(['accept', r.pick(['application/json', 'text/html', '*/*', '', 'image/png', 'text/html;q=0, application/json;q=0'])]); },
  'forwarded headers': (d, r) => {
    d.headers.push([r.pick(['x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-for', 'forwarded']), r.pick(['evil.example', 'gopher', 'a b, c', '127.0.0.1:99999', 'for=unknown;proto=x'])]);
  },
};

export const MUTATION_NAMES = Object.keys(MUTATIONS);

function serializeDraft(d: Draft, w: FuzzWorld): FuzzRequest {
  const target = d.to === 'op' ? w.op : w.rp;
  const query = d.query.map(([k, v]) => `${k}=${v}`).join('&');
  const headers = [...d.headers];
  if (!d.mutations.includes('malformed Host')) headers.unshift(['host', `127.0.0.1:${target.port}`]);
  let body: Buffer | undefined;
  if (d.body) {
    const b = d.body;
    body = b.type === 'raw' ? b.raw! : b.type === 'json' ? Buffer.from(JSON.stringify(b.json), 'latin1')
      : Buffer.from(b.fields!.map(([k, v]) => `${k}=${v}`).join('&'), 'latin1');
    headers.push(['content-type', b.contentType ?? (b.type === 'json' ? 'application/json' : 'application/x-www-form-urlencoded')]);
  }
  const path = `${d.path}${query ? `?${query}` : ''}`;
  return { to: d.to, route: d.route, mutations: d.mutations, victim: d.victim, method: d.method, target: d.target ? `${d.target}${query ? `?${query}` : ''}` : path, headers, body };
}

/** One request: a catalogued route, then 0–3 mutations. */
export function generate(w: FuzzWorld, r: Rng): FuzzRequest {
  const name = r.pick(Object.keys(ROUTES));
  const base = ROUTES[name]!(w, r);
  const d: Draft = { ...base, headers: [...(base.headers ?? [])], mutations: [] };
  const count = r.pick([0, 1, 1, 1, 1, 2, 2, 3]);
  for (let i = 0; i < count; i += 1) {
    const m = r.pick(MUTATION_NAMES);
    if (d.mutations.includes(m)) continue;
    d.mutations.push(m);
    MUTATIONS[m]!(d, r, w);
  }
  return serializeDraft(d, w);
}

/**
 * Shapes every run sends whatever the seed: the issue's three known 500s (another letter case under
 * the mount, a malformed escape in a WebFinger resource, a malformed Host on discovery, end-session
 * and registration), and the victim's cookie on each RP route from another site.
 */
export function required(w: FuzzWorld, r: Rng): FuzzRequest[] {
  const fixed = (name: string, mutations: Array<[string, (d: Draft) => void]>): FuzzRequest => {
    const base = ROUTES[name]!(w, r);
    const d: Draft = { ...base, headers: [...(base.headers ?? [])], mutations: [] };
    for (const [m, apply] of mutations) { d.mutations.push(m); apply(d); }
    return serializeDraft(d, w);
  };
  const host = (value: string | null) => (d: Draft) => { if (value !== null) d.headers.unshift(['host', value]); };
  const out: FuzzRequest[] = [
    fixed('OP jwks', [['letter case', (d) => { d.path = '/OP/jwks'; }]]),
    fixed('OP discovery', [['letter case', (d) => { d.path = '/Op/.well-known/openid-configuration'; }]]),
    fixed('OP webfinger', [['malformed escape', (d) => { d.query = [['resource', `https://${new URL(w.op.origin).host}/%zz`]]; }]]),
  ];
  for (const name of ['OP discovery', 'OP end_session', 'OP registration']) {
    for (const value of ['127.0.0.1:99999', 'a b', '', null]) out.push(fixed(name, [['malformed Host', host(value)]]));
    out.push(fixed(name, [['request-line authority', (d) => { d.target = `http://127.0.0.1:99999${d.path}`; }]]));
  }
  for (const name of Object.keys(RP_ROUTES)) out.push(fixed(name, [['victim cookie, cross-site', (d) => MUTATIONS['victim cookie, cross-site']!(d, r, w)]]));
  return out;
}
