/**
 * DPoP (RFC 9449; IdPyOIDC: the `dpop` add-on, `client/oauth2/add_on/dpop.py`): sender-constrained
 * access tokens.
 *
 * With `dpop` on a provider entry, every login gets a key pair of its own (ES256 unless the entry
 * names another `alg`), made when the code is exchanged. The token endpoint binds the access token to
 * it (`token_type` "DPoP", `cnf.jkt`); the private key is kept with the login
 * (`Authentication.dpop`: one JWK, about 200 bytes of session) so that any instance can prove
 * possession: at the token endpoint (refresh keeps the binding), at the userinfo endpoint and in
 * `req.oidc.fetch()`. A token the OP answered as Bearer (an OP without DPoP) is used as Bearer.
 *
 * Proofs for the OP go through openid-client's DPoP handle (it retries once with the OP's
 * `DPoP-Nonce`); proofs for resource servers are signed here, with the same retry on
 * `WWW-Authenticate: DPoP error="use_dpop_nonce"`, so `fetch` keeps its own semantics (redirects,
 * `signal`, any body).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import * as jose from 'jose';
import { OptionsError, RpError } from './errors.js';

/** The DPoP proof algorithms a login key may use (`dpop: { alg }`). */
export type DPoPAlg = 'ES256' | 'ES384' | 'ES512' | 'Ed25519';
export const DPOP_ALGS: readonly DPoPAlg[] = ['ES256', 'ES384', 'ES512', 'Ed25519'];

/** The private key a login's access token is bound to, as kept in the session (a private JWK, nothing else). */
export interface DPoPKey {
  kty: 'EC' | 'OKP';
  crv: string;
  x: string;
  y?: string;
  d: string;
}

/** What a DPoP-bound token travels with: the token and the key it is bound to. */
export interface DPoPBoundToken {
  accessToken?: { value: string; tokenType: string };
  dpop?: DPoPKey;
}

const ALG_OF_CURVE: Record<string, DPoPAlg> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', Ed25519: 'Ed25519' };

/** One imported key: its key pair, public JWK and thumbprint, openid-client handles (per Configuration) and resource-server nonces. */
interface KeyState {
  alg: DPoPAlg;
  keyPair: client.CryptoKeyPair;
  publicJwk: jose.JWK;
  jkt: string;
  handles: WeakMap<client.Configuration, client.DPoPHandle>;
  nonces: Map<string, string>;
}

/** Imported keys, least recently used first (a login's key is imported once per instance, not per request). */
const states = new Map<string, Promise<KeyState>>();
const MAX_STATES = 1000;
const MAX_NONCES = 100;

async function importState(key: DPoPKey): Promise<KeyState> {
  const alg = ALG_OF_CURVE[key.crv];
  if (!alg || (key.kty !== 'EC' && key.kty !== 'OKP')) throw new RpError('invalid_request', `the login's DPoP key (${key.kty} ${key.crv}) is not one openid-express makes`);
  const publicJwk: jose.JWK = key.kty === 'EC' ? { kty: key.kty, crv: key.crv, x: key.x, y: key.y } : { kty: key.kty, crv: key.crv, x: key.x };
  const privateKey = (await jose.importJWK({ ...key }, alg, { extractable: false })) as CryptoKey;
  // openid-client puts the public key in its proofs' header: it must be extractable
  const publicKey = (await jose.importJWK(publicJwk, alg, { extractable: true })) as CryptoKey;
  return { alg, keyPair: { privateKey, publicKey }, publicJwk, jkt: await jose.calculateJwkThumbprint(publicJwk, 'sha256'), handles: new WeakMap(), nonces: new Map() };
}

function keyState(key: DPoPKey): Promise<KeyState> {
  const id = `${key.crv}.${key.x}.${key.y ?? ''}`;
  let state = states.get(id);
  if (state) {
    states.delete(id); // most recently used last
  } else {
    state = importState(key);
    state.catch(() => states.delete(id));
    if (states.size >= MAX_STATES) states.delete(states.keys().next().value!);
  }
  states.set(id, state);
  return state;
}

/** Each OP's `dpop_signing_alg_values_supported` (empty: it lists none). */
const supportedAlgs = new WeakMap<client.Configuration, string[]>();

/** The `alg` of provider entry option `dpop` (true: ES256). */
export function dpopAlg(option: boolean | { alg?: DPoPAlg } | undefined): DPoPAlg {
  return (typeof option === 'object' && option.alg) || 'ES256';
}

/**
 * A fresh key pair for one login (or one client-credentials / device grant), as the private JWK kept
 * with it. When the OP lists `dpop_signing_alg_values_supported` and `alg` is not in it, that is a
 * configuration error naming the option.
 *
 * @example
 * ```ts
 * const key = await newDPoPKey('corp', 'ES256', config); // { kty: 'EC', crv: 'P-256', x, y, d }
 * ```
 */
export async function newDPoPKey(name: string, alg: DPoPAlg, config: client.Configuration): Promise<DPoPKey> {
  let supported = supportedAlgs.get(config);
  if (!supported) {
    const listed = config.serverMetadata().dpop_signing_alg_values_supported; // (a copy of the metadata each call: read once)
    supported = Array.isArray(listed) ? listed.filter((a): a is string => typeof a === 'string') : [];
    supportedAlgs.set(config, supported);
  }
  if (supported.length > 0 && !supported.includes(alg)) {
    throw new OptionsError(`providers.${name}.dpop`, `asks for ${alg} DPoP proofs, but the OP accepts only ${supported.join(', ')}: set dpop: { alg: '${supported.find((a) => (DPOP_ALGS as string[]).includes(a)) ?? supported[0]}' }`);
  }
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { kty: jwk.kty as DPoPKey['kty'], crv: jwk.crv!, x: jwk.x!, ...(jwk.y ? { y: jwk.y } : {}), d: jwk.d! };
}

/** The JWK thumbprint (RFC 7638, SHA-256) of a DPoP key: the `cnf.jkt` of the tokens bound to it. */
export async function dpopThumbprint(key: DPoPKey): Promise<string> {
  return (await keyState(key)).jkt;
}

/**
 * openid-client's option for a request to the OP with this key (`{ DPoP: handle }`), or undefined
 * without a key. The handle is kept per key and Configuration, so the OP's `DPoP-Nonce` is reused.
 */
export async function dpopOptions(config: client.Configuration, key: DPoPKey | undefined): Promise<client.DPoPOptions | undefined> {
  if (!key) return undefined;
  const state = await keyState(key);
  let handle = state.handles.get(config);
  if (!handle) {
    handle = client.getDPoPHandle(config, state.keyPair);
    state.handles.set(config, handle);
  }
  return { DPoP: handle };
}

/** The key to keep with tokens the OP answered: `key` when it bound the access token to it (`token_type` DPoP), else undefined (Bearer). */
export function boundKey(tokens: { token_type?: string }, key: DPoPKey | undefined): DPoPKey | undefined {
  return key && tokens.token_type?.toLowerCase() === 'dpop' ? key : undefined;
}

/** A DPoP proof JWT (RFC 9449 §4.2) for `method` `url`, bound to `accessToken` (`ath`). */
async function proof(state: KeyState, method: string, url: URL, accessToken: string, nonce: string | undefined): Promise<string> {
  return new jose.SignJWT({
    htm: method,
    htu: `${url.origin}${url.pathname}`,
    ath: createHash('sha256').update(accessToken, 'ascii').digest('base64url'),
    jti: randomBytes(16).toString('base64url'),
    ...(nonce ? { nonce } : {}),
  })
    .setProtectedHeader({ alg: state.alg, typ: 'dpop+jwt', jwk: state.publicJwk })
    .setIssuedAt()
    .sign(state.keyPair.privateKey);
}

/** True for a 401 whose `WWW-Authenticate` has a DPoP challenge with `error="use_dpop_nonce"` (RFC 9449 §9). */
function asksForNonce(response: Response): boolean {
  const challenge = response.headers.get('www-authenticate') ?? '';
  return response.status === 401 && /(^|,)\s*dpop\b/i.test(challenge) && /error\s*=\s*"?use_dpop_nonce"?/i.test(challenge);
}

/** A request body that can be sent a second time (not a stream). */
function replayable(body: RequestInit['body']): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof URLSearchParams || body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) || body instanceof Blob || body instanceof FormData;
}

/**
 * `fetch` to a resource server with a DPoP-bound access token: `Authorization: DPoP <token>` and a
 * fresh `DPoP` proof (`htm`, `htu`, `ath`, the server's last nonce). A 401 asking for a nonce
 * (`use_dpop_nonce` with a `DPoP-Nonce`) is retried once with it, unless the body is a stream.
 *
 * @example
 * ```ts
 * const response = await dpopFetch(auth.dpop, auth.accessToken.value, 'https://api.example.com/orders');
 * ```
 */
export async function dpopFetch(key: DPoPKey, accessToken: string, input: string | URL, init: RequestInit = {}): Promise<Response> {
  const state = await keyState(key);
  const url = new URL(input);
  const method = (init.method ?? 'GET').toUpperCase();
  const send = async (nonce: string | undefined): Promise<Response> => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `DPoP ${accessToken}`);
    headers.set('dpop', await proof(state, method, url, accessToken, nonce));
    const response = await fetch(url, { ...init, headers });
    const next = response.headers.get('dpop-nonce');
    if (next) {
      state.nonces.delete(url.origin);
      if (state.nonces.size >= MAX_NONCES) state.nonces.delete(state.nonces.keys().next().value!);
      state.nonces.set(url.origin, next);
    }
    return response;
  };
  const sent = state.nonces.get(url.origin);
  const response = await send(sent);
  const fresh = response.headers.get('dpop-nonce');
  if (!fresh || fresh === sent || !asksForNonce(response) || !replayable(init.body)) return response;
  await response.body?.cancel();
  return send(fresh);
}

/**
 * `fetch` with the access token of a login or a grant result: DPoP-bound tokens (`tokenType` "DPoP")
 * with a proof signed by `dpop`, others as `Authorization: Bearer`.
 *
 * @example
 * ```ts
 * const response = await fetchWithToken(await relyingParty.clientCredentials('corp'), 'https://api.example.com/stock');
 * ```
 */
export function fetchWithToken(tokens: DPoPBoundToken, input: string | URL, init: RequestInit = {}): Promise<Response> {
  const token = tokens.accessToken;
  if (!token) return Promise.reject(new RpError('not_authenticated', 'there is no access token to call the resource server with'));
  if (token.tokenType.toLowerCase() === 'dpop') {
    if (!tokens.dpop) return Promise.reject(new RpError('invalid_request', 'the access token is DPoP-bound, but its DPoP key is missing'));
    return dpopFetch(tokens.dpop, token.value, input, init);
  }
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token.value}`);
  return fetch(input, { ...init, headers });
}
