// What goes over the wire, made fit to print: secrets masked, tokens cut to a short prefix,
// JWTs decoded (header + claims), client authentication spelled out.

/** Parameters whose value is a secret: never shown, not even in part. */
const SECRETS = new Set(['client_secret', 'password', 'registration_access_token', 'initial_access_token']);
/** Parameters holding a token or code: shown as a short prefix (JWTs are decoded beside it). */
const TOKENS = new Set([
  'access_token', 'refresh_token', 'id_token', 'code', 'code_verifier', 'token', 'subject_token', 'actor_token',
  'device_code', 'client_assertion', 'request', 'logout_token', 'session_state',
]);
/** Parameters decoded when they are JWTs. */
const JWT_FIELDS = new Set(['access_token', 'refresh_token', 'id_token', 'token', 'subject_token', 'actor_token', 'client_assertion', 'request', 'response']);

export const SECRET_MASK = '••••';

/** `abcdefgh…` — enough to tell two tokens apart, too little to use one. */
export function prefix(value) {
  const s = String(value);
  return s.length <= 10 ? `${s.slice(0, 3)}…` : `${s.slice(0, 10)}…`;
}

/** True for a compact JWS (three base64url parts, a JSON header). */
export function isJwt(value) {
  if (typeof value !== 'string' || !/^[\w-]+\.[\w-]+\.[\w-]*$/.test(value)) return false;
  try {
    return typeof JSON.parse(Buffer.from(value.split('.')[0], 'base64url').toString()).alg === 'string';
  } catch {
    return false;
  }
}

/** The header and claims of a JWT, unverified (what was verified is said separately). */
export function decodeJwt(jwt) {
  const [h, p] = jwt.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString()), claims: JSON.parse(Buffer.from(p, 'base64url').toString()) };
}

/**
 * A form or JSON body with secrets masked and tokens cut; JWTs found in it are returned decoded in
 * `jwts` (by parameter name).
 */
export function maskFields(fields) {
  const body = {};
  const jwts = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (SECRETS.has(key) && typeof value === 'string') body[key] = SECRET_MASK;
    else if (TOKENS.has(key) && typeof value === 'string') body[key] = prefix(value);
    else body[key] = value;
    if (JWT_FIELDS.has(key) && isJwt(value)) jwts[key] = decodeJwt(value);
  }
  return { body, jwts };
}

/** How the client authenticated, read from the request: method, client_id, the secret masked, an assertion decoded. */
export function clientAuthentication(headers, form) {
  const authorization = headers.get('authorization') ?? '';
  if (/^basic /i.test(authorization)) {
    const decoded = Buffer.from(authorization.slice(6), 'base64').toString();
    const colon = decoded.indexOf(':');
    return { method: 'client_secret_basic', client_id: decodeURIComponent(decoded.slice(0, colon)), client_secret: SECRET_MASK };
  }
  if (form?.client_assertion) {
    const { header } = decodeJwt(form.client_assertion);
    return { method: header.alg?.startsWith('HS') ? 'client_secret_jwt' : 'private_key_jwt', client_id: form.client_id, client_assertion: '(JWT, decoded below)' };
  }
  if (form?.client_secret) return { method: 'client_secret_post', client_id: form.client_id, client_secret: SECRET_MASK };
  if (form?.client_id) return { method: 'none', client_id: form.client_id };
  return undefined;
}

/** The parameters of a URL query or form body as a plain object (a repeated name becomes an array). */
export function paramsObject(params) {
  const out = {};
  for (const [key, value] of params) {
    if (key in out) out[key] = [].concat(out[key], value);
    else out[key] = value;
  }
  return out;
}

/** Request headers worth showing: the access token (cut) and a DPoP proof (decoded). */
export function interestingRequestHeaders(headers) {
  const out = {};
  const jwts = {};
  const authorization = headers.get('authorization');
  if (authorization && !/^basic /i.test(authorization)) {
    const [scheme, token] = authorization.split(' ');
    out.authorization = `${scheme} ${prefix(token ?? '')}${isJwt(token) ? ' (the access token, a JWT)' : ''}`;
  }
  const dpop = headers.get('dpop');
  if (dpop) {
    out.dpop = '(proof JWT, decoded below)';
    jwts.DPoP = decodeJwt(dpop);
  }
  return { headers: out, jwts };
}

/** Response headers worth showing (DPoP nonces, challenges). */
export function interestingResponseHeaders(headers) {
  const out = {};
  for (const name of ['dpop-nonce', 'www-authenticate']) {
    const value = headers.get(name);
    if (value) out[name] = value;
  }
  return out;
}

/** A response body, parsed and masked; discovery documents and key sets shortened to what a reader needs. */
export function responseBody(text, contentType, url) {
  if (!text) return { body: undefined, jwts: {} };
  if (/json/.test(contentType ?? '')) {
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      return { body: text.slice(0, 200), jwts: {} };
    }
    if (url.pathname.endsWith('/.well-known/openid-configuration') || url.pathname.endsWith('/.well-known/oauth-authorization-server')) {
      return { body: metadataSummary(json), jwts: {} };
    }
    if (Array.isArray(json.keys)) {
      return { body: { keys: json.keys.map((k) => [k.kty, k.crv, k.alg, k.use && `use=${k.use}`, k.kid && `kid=${k.kid}`].filter(Boolean).join(' ')) }, jwts: {} };
    }
    return maskFields(json);
  }
  if (/jwt/.test(contentType ?? '') && isJwt(text.trim())) {
    return { body: { response: prefix(text.trim()) }, jwts: { response: decodeJwt(text.trim()) } };
  }
  if (/html/.test(contentType ?? '')) return { body: `(HTML page, ${text.length} bytes)`, jwts: {} };
  return { body: text.length > 200 ? `${text.slice(0, 200)}…` : text, jwts: {} };
}

/** The discovery fields a story's reader looks at; the others are counted. */
const METADATA_FIELDS = [
  'issuer', 'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'registration_endpoint',
  'pushed_authorization_request_endpoint', 'device_authorization_endpoint', 'revocation_endpoint', 'introspection_endpoint',
  'grant_types_supported', 'response_types_supported', 'token_endpoint_auth_methods_supported', 'dpop_signing_alg_values_supported',
  'request_object_signing_alg_values_supported', 'code_challenge_methods_supported', 'scopes_supported', 'claims_parameter_supported',
];

function metadataSummary(metadata) {
  const out = {};
  for (const field of METADATA_FIELDS) if (metadata[field] !== undefined) out[field] = metadata[field];
  const more = Object.keys(metadata).length - Object.keys(out).length;
  if (more > 0) out['…'] = `${more} more fields`;
  return out;
}
