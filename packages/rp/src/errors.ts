/**
 * The errors of the RP, each with a stable `code` that apps and tests match on and the HTTP
 * status the router answers with.
 */
import { setCapped } from './capped-map.js';

/** Every error code the RP answers with (stable; listed in the README). */
export type RpErrorCode =
  | 'session_missing'
  | 'cookie_not_sent'
  | 'invalid_options'
  | 'unknown_provider'
  | 'missing_state'
  | 'invalid_state'
  | 'transaction_expired'
  | 'op_error'
  | 'invalid_response'
  | 'invalid_id_token'
  | 'invalid_grant'
  | 'op_unreachable'
  | 'op_unavailable'
  | 'store_unavailable'
  | 'not_authenticated'
  | 'insufficient_claims'
  | 'insufficient_scope'
  | 'no_refresh_token'
  | 'no_access_token'
  | 'refresh_failed'
  | 'login_ended'
  | 'invalid_logout_token'
  | 'invalid_request'
  | 'cross_origin_request'
  | 'not_found'
  | 'method_not_allowed'
  | 'client_auth_failed'
  | 'discovery_failed'
  // dynamic OPs (GET {mountPath}/login?identifier=)
  | 'invalid_identifier'
  | 'webfinger_failed'
  | 'issuer_not_allowed'
  | 'registration_failed'
  | 'registration_disabled'
  // a bug: an exception of the app's own hooks (profile, fetchUser …) or of the RP, not an answer of the OP
  | 'internal_error';

const STATUS: Record<RpErrorCode, number> = {
  session_missing: 500,
  cookie_not_sent: 500,
  invalid_options: 500,
  unknown_provider: 404,
  missing_state: 400,
  invalid_state: 400,
  transaction_expired: 400,
  op_error: 400,
  invalid_response: 400,
  invalid_id_token: 401,
  invalid_grant: 400,
  op_unreachable: 503,
  op_unavailable: 503,
  store_unavailable: 503,
  not_authenticated: 401,
  insufficient_claims: 403,
  insufficient_scope: 403,
  no_refresh_token: 400,
  no_access_token: 400,
  refresh_failed: 401,
  login_ended: 401,
  invalid_logout_token: 400,
  invalid_request: 400,
  cross_origin_request: 403,
  not_found: 404,
  method_not_allowed: 405,
  client_auth_failed: 500,
  discovery_failed: 502,
  invalid_identifier: 400,
  webfinger_failed: 502,
  issuer_not_allowed: 403,
  registration_failed: 502,
  registration_disabled: 400,
  internal_error: 500,
};

/** Seconds a transient failure's answer asks to wait, unless the OP said how long itself (`opRetryAfter`). */
const DEFAULT_RETRY_AFTER = 5;
/** The longest wait an OP's own `Retry-After` is passed on with: a user looks at the page meanwhile. */
const MAX_RETRY_AFTER = 120;

/**
 * The OP's own `Retry-After` on a 5xx or 429 answer (delay-seconds or an HTTP date, RFC 9110 §10.2.3),
 * in whole seconds between 1 and 120; undefined when it sent none or one that cannot be read.
 */
export function opRetryAfter(headers: { get(name: string): string | null } | undefined, now = Date.now()): number | undefined {
  const value = headers?.get('retry-after')?.trim();
  if (!value) return undefined;
  const seconds = /^\d{1,10}$/.test(value) ? Number(value) : Math.ceil((Date.parse(value) - now) / 1000);
  if (!Number.isFinite(seconds)) return undefined;
  return Math.min(MAX_RETRY_AFTER, Math.max(1, seconds));
}

/** Failures that pass by themselves (an OP restarting, Redis stalling): answered with `Retry-After`, never a logout. */
const TRANSIENT: ReadonlySet<RpErrorCode> = new Set(['op_unreachable', 'op_unavailable', 'store_unavailable']);

/**
 * An error of the RP. `code` is stable, `status` is what the router answers with, `message` is
 * safe to show (never contains tokens, codes or secrets).
 *
 * @example
 * ```ts
 * try { await relyingParty.refresh(auth) } catch (err) {
 *   if (err instanceof RpError && err.code === 'refresh_failed') reLogin();
 * }
 * ```
 */
export class RpError extends Error {
  readonly code: RpErrorCode;
  readonly status: number;
  /** The OP's `error` value, when the OP refused (e.g. `access_denied`, `invalid_grant`). */
  readonly opError?: string;
  /** Seconds to wait before trying again (the `Retry-After` header), for transient failures. */
  readonly retryAfter?: number;
  /**
   * Where a new login can start (the login route of the same provider, back to the same page): set
   * on the errors of a login's callback, whose answer cannot be used again; the default error page
   * links to it ("Sign in again").
   */
  loginUrl?: string;

  /**
   * True when the failure lasts until someone changes a setting (Redis refusing this app's password or
   * ACL user, or full: `OOM`): still a 503 with `Retry-After`, but the error page does not tell the user it passes by itself.
   */
  readonly lasting?: boolean;

  constructor(code: RpErrorCode, message: string, options: { opError?: string; cause?: unknown; retryAfter?: number; lasting?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RpError';
    this.code = code;
    this.status = STATUS[code];
    if (options.opError) this.opError = options.opError;
    if (options.lasting) this.lasting = true;
    if (TRANSIENT.has(code)) this.retryAfter = options.retryAfter ?? DEFAULT_RETRY_AFTER;
  }

  /** The JSON body the router sends for this error. */
  toJSON(): { error: RpErrorCode; error_description: string; op_error?: string } {
    return {
      error: this.code,
      error_description: this.message,
      ...(this.opError ? { op_error: this.opError } : {}),
    };
  }
}

/**
 * Start-up error for a bad option of `rp()`, of a provider preset (`google()`, `oauth2()` …) or of `requireAuth()`:
 * names the option (also as `option`) and says what to fix.
 */
export class OptionsError extends RpError {
  readonly option: string;
  constructor(option: string, problem: string, where = 'rp()') {
    super('invalid_options', `${where}: option "${option}" ${problem}`);
    this.name = 'OptionsError';
    this.option = option;
  }
}

// OAUTH_DECRYPTION_FAILED: openid-client decrypts only encrypted ID tokens here (UserInfo JWTs are read by userinfo.ts)
const ID_TOKEN_CODES = new Set(['OAUTH_JWT_CLAIM_COMPARISON_FAILED', 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED', 'OAUTH_KEY_SELECTION_FAILED', 'OAUTH_DECRYPTION_FAILED']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET']);

function isError(value: unknown): value is Error {
  return typeof value === 'object' && value !== null && typeof (value as Error).message === 'string';
}

/** fetch failures, possibly wrapped by openid-client ("something went wrong", cause: TypeError). */
function isNetworkError(err: unknown, depth = 0): boolean {
  // duck-typed: fetch errors may come from another realm (undici), where instanceof fails
  if (!isError(err) || depth > 3) return false;
  const code = (err as { code?: unknown }).code;
  if (err.name === 'AbortError' || err.name === 'TimeoutError' || code === 'OAUTH_TIMEOUT') return true;
  if (err.name === 'TypeError' && err.message === 'fetch failed') return true;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  return isNetworkError(err.cause, depth + 1);
}

/** What a fetch failure was, in words without addresses: refused, timed out, name not found … */
function networkFailure(err: unknown): string {
  for (let e = err, depth = 0; isError(e) && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (e.name === 'TimeoutError' || e.name === 'AbortError' || code === 'OAUTH_TIMEOUT' || code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'no answer in time';
    if (code === 'ECONNREFUSED') return 'connection refused';
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'its host name did not resolve';
    if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'the connection was closed';
  }
  return 'the request failed';
}

/** The HTTP status of an OP answer that openid-client refused (ResponseBodyError.status, or the Response it names as cause). */
export function opStatus(err: Error & { status?: unknown }): number | undefined {
  if (typeof err.status === 'number') return err.status;
  const cause = err.cause as { status?: unknown; headers?: unknown } | undefined;
  return cause && typeof cause.status === 'number' && typeof cause.headers === 'object' ? cause.status : undefined;
}

/** The headers of the OP answer that openid-client refused (ResponseBodyError.response, or the Response it names as cause). */
function opHeaders(err: Error & { response?: unknown }): Headers | undefined {
  for (const candidate of [err, err.response, err.cause]) {
    const headers = (candidate as { headers?: unknown } | undefined)?.headers;
    if (headers instanceof Headers) return headers;
  }
  return undefined;
}

/**
 * Why a token's `alg` was refused, for a newcomer: which alg came, which are accepted from the OP,
 * and what the provider entry can set (an OP left on HMAC, as LemonLDAP::NG is by default).
 */
export function algNotAccepted(headerAlg: unknown, accepted: readonly string[]): string {
  // the header is the sender's (an attacker's, maybe): one short line, and a non-string is no alg
  const alg = opText(headerAlg).slice(0, 40) || 'no alg';
  const list = accepted.join(' or ') || 'the algorithms the OP advertises';
  const hint = alg === 'none' ? 'unsigned tokens are never accepted'
    : alg.startsWith('HS') ? `HMAC-signed tokens (keyed with the client secret) are accepted only when the provider entry sets idTokenSignedResponseAlg: '${alg}' and the client is registered with it at the OP; otherwise have the OP sign this client's tokens with ${list}`
      : `if the client is registered with ${alg} at the OP, set idTokenSignedResponseAlg: '${alg}' in the provider entry`;
  return `it is signed with "alg" ${alg}, and tokens from this OP are accepted signed with ${list}: ${hint}`;
}

/** Keeps an OP-supplied text short and on one line, without control characters (it ends up in pages and logs). */
function opText(value: unknown): string {
  return typeof value === 'string' ? oneLine(value, 200) : '';
}

/**
 * `text` on one line and at most `max` characters, its control characters (CR, LF, ESC, C1) as
 * spaces: what goes into a log line from a request, so a visitor can neither forge lines nor send the
 * operator's terminal escapes, nor make a line of kilobytes.
 */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/**
 * Turns anything thrown by openid-client, jose, fetch or a provider hook into an `RpError`.
 * `idTokenCode` is the code for a refused JWT (`invalid_id_token`, `invalid_logout_token`).
 */
export function toRpError(err: unknown, idTokenCode: RpErrorCode = 'invalid_id_token'): RpError {
  // one of ours, thrown inside openid-client (e.g. by a customFetch) and wrapped by it
  for (let e = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) if (e instanceof RpError) return e;
  if (!isError(err)) return new RpError('invalid_response', 'unexpected failure');
  const e = err as Error & { code?: string; error?: string; error_description?: string };
  const status = opStatus(e);
  // 429: the OP is rate limiting (RFC 6585); like a 5xx it passes by itself, so never a logout
  if (status !== undefined && (status >= 500 || status === 429)) {
    return new RpError('op_unavailable', `the OpenID Provider is temporarily unavailable (HTTP ${status}); try again shortly`, {
      cause: err, retryAfter: opRetryAfter(opHeaders(e)),
    });
  }
  if (e.name === 'WWWAuthenticateChallengeError') {
    // a 401 with WWW-Authenticate (e.g. the token endpoint refusing client_secret_basic): the OP's error is in the challenge
    const params = (e.cause as Array<{ parameters?: { error?: unknown; error_description?: unknown } }> | undefined)?.[0]?.parameters;
    const opError = opText(params?.error) || 'invalid_client';
    const detail = opText(params?.error_description);
    return new RpError('op_error', `the OpenID Provider answered "${opError}"${detail ? `: ${detail}` : ''}`, { opError, cause: err });
  }
  if (e.name === 'AuthorizationResponseError' || e.name === 'ResponseBodyError') {
    const opError = opText(e.error) || 'error';
    const detail = opText(e.error_description);
    const code: RpErrorCode = e.name === 'ResponseBodyError' && opError === 'invalid_grant' ? 'invalid_grant' : 'op_error';
    return new RpError(code, `the OpenID Provider answered "${opError}"${detail ? `: ${detail}` : ''}`, { opError, cause: err });
  }
  if (isNetworkError(e)) return new RpError('op_unreachable', `the OpenID Provider could not be reached (${networkFailure(e)})`, { cause: err });
  // openid-client's own alg check (the error, or the one it wraps): its cause names the header and what was expected
  const algError = [e, e.cause as Error | undefined].find((x) => x?.message === 'unexpected JWT "alg" header parameter');
  const algCause = algError?.cause as { header?: { alg?: unknown }; expected?: unknown } | undefined;
  if (algCause?.header) {
    const expected = Array.isArray(algCause.expected) ? algCause.expected.map(String) : typeof algCause.expected === 'string' ? [algCause.expected] : [];
    return new RpError(idTokenCode, `the token was refused: ${algNotAccepted(algCause.header.alg, expected)}`, { cause: err });
  }
  const inner = (e.cause as Error | undefined)?.message;
  // openid-client names the JWT either in the cause or in its own message (e.g. an unknown "crit" header);
  // an encrypted ID token the provider entry did not ask for is "JWE decryption is not configured"
  const aboutJwt = /\bJWT\b|\bJWE\b|ID Token/.test(`${inner ?? ''} ${e.message}`);
  if (typeof e.code === 'string' && (ID_TOKEN_CODES.has(e.code) || e.code.startsWith('ERR_J') || aboutJwt)) {
    return new RpError(idTokenCode, `the token was refused: ${inner ?? e.message}`, { cause: err });
  }
  if (typeof e.code === 'string' && e.code.startsWith('OAUTH_')) {
    const message = inner && inner !== e.message ? `${e.message}: ${inner}` : e.message;
    return new RpError('invalid_response', `the OpenID Provider's response was refused: ${message}`, { cause: err });
  }
  // jose refuses some keys with a bare TypeError (an OP's RSA key under 2048 bits, a key its alg cannot use): the OP's token is refused
  if (e.code === undefined && thrownBy(e, /[\\/]node_modules[\\/]jose[\\/]/)) {
    return new RpError(idTokenCode, `the token was refused: ${e.message}`, { cause: err });
  }
  // a TypeError or ReferenceError without a code is a bug in code that ran here (a provider entry's hook such as
  // profile() or fetchUser(), or the RP), not a refusal of the OP's answer: a 500, and the log holds its stack
  if (isBug(e)) {
    return new RpError('internal_error', `the app failed while handling this (${e.name}, not an answer of the OpenID Provider); the details are in the server's log`, { cause: err });
  }
  return new RpError('invalid_response', `the response was refused: ${e.message}`, { cause: err });
}

/** The steps of a login or refresh that call the OP, each at its endpoint. */
export type OpStep = 'code exchange' | 'refresh' | 'userinfo';

/** Codes of an OP's answer (or of its absence), which say nothing of where they came from on their own. */
const FROM_OP: ReadonlySet<RpErrorCode> = new Set(['op_error', 'invalid_response', 'invalid_id_token', 'invalid_grant', 'op_unreachable', 'op_unavailable', 'refresh_failed']);

/**
 * `e`, a failure of `step` at provider entry `provider`, saying where and what to do: the provider,
 * its issuer and the endpoint's URL (without its query: no token or code), and advice when it has
 * none. Its code, status, `opError`, `retryAfter` and `cause` stay; one that names a provider already,
 * or is not about the OP's answer (a store failure, a bug), is `e` itself.
 *
 * @example
 * ```ts
 * throw atProvider(toRpError(err), { provider: 'corp', issuer, step: 'refresh', url: tokenEndpoint });
 * ```
 */
export function atProvider(e: RpError, where: { provider: string; issuer: string; step: OpStep; url?: string }): RpError {
  if (!FROM_OP.has(e.code) || e.message.startsWith('provider "')) return e;
  // the authorization response (the user said no at the OP, a wrong state or iss) came through the browser, not from an endpoint
  // (an error rp() rewrapped, such as "use PAR", carries the browser's answer further down its causes)
  let frontChannel = /response parameter/.test(e.message);
  for (let c = e.cause, depth = 0; c && !frontChannel && depth < 4; c = (c as Error).cause, depth++) frontChannel = (c as Error).name === 'AuthorizationResponseError';
  const url = where.url && !frontChannel ? withoutQuery(where.url) : undefined;
  // (a message that names a URL says where already: e.g. the OP's keys, fetched before the grant)
  const endpoint = url && !/https?:\/\//.test(e.message) ? `, ${where.step === 'userinfo' ? 'userinfo' : 'token'} endpoint ${url}` : '';
  // (read in rp()'s own words: an OP's error_description, quoted after `answered "<error>": `, may say "must" or "try again" too)
  const own = e.message.replace(/(answered "[^"]*"): [\s\S]*$/, '$1');
  const advised = frontChannel || /try again|sign(ing)? in again|check providers|publish the|must |idTokenSignedResponseAlg|pushedAuthorizationRequests/i.test(own);
  const advice = advised ? '' : whatToDo(e, where.provider, where.step);
  const named = new RpError(e.code, `provider "${where.provider}" (issuer ${where.issuer})${endpoint}: ${e.message}${advice ? `. ${advice}` : ''}`,
    { opError: e.opError, cause: e.cause ?? e, retryAfter: e.retryAfter, lasting: e.lasting });
  if (e.loginUrl) named.loginUrl = e.loginUrl;
  return named;
}

const withoutQuery = (url: string): string => {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(an invalid URL)';
  }
};

/** What to do about a failure of `step` that does not say so itself. */
function whatToDo(e: RpError, provider: string, step: OpStep): string {
  switch (e.code) {
    case 'op_unreachable':
      return 'Check that the OP is up and that this server can reach it (DNS, firewall, outbound proxy); try again shortly';
    case 'op_unavailable':
      return 'Try again shortly; if it lasts, the OP\'s logs say why';
    case 'invalid_grant':
      return step === 'code exchange'
        ? 'The authorization code was used already, has expired, or was issued for another client or redirect_uri: sign in again'
        : 'Sign in again';
    case 'refresh_failed':
      // the OP answered, and its new ID token failed this RP's checks: no sign of a spent refresh token
      if (/ID token/.test(e.message)) return 'The OP\'s new ID token does not fit this login: sign in again, and if it lasts, tell the OP\'s operators';
      return 'The OP no longer accepts this login\'s refresh token (revoked, expired or used already): sign in again';
    case 'invalid_id_token':
      if (/"aud"|audience/.test(e.message)) return `The ID token is for another client: check providers.${provider}.clientId against the client registered at the OP`;
      if (/"iss"|issuer/.test(e.message)) return `The ID token names another issuer: check providers.${provider}.issuer (the OP's exact issuer identifier)`;
      if (/auth_time|End-User authentication/.test(e.message)) return 'The OP did not authenticate the user again within the max_age this login asked for: sign in again (an OP that never does ignores max_age)';
      if (/"exp"|"iat"|"nbf"|timestamp/.test(e.message)) return 'If every login fails so, make the clocks of this server and the OP agree (NTP)';
      return 'Check the OP\'s settings for this client (its signing keys and algorithms), then sign in again';
    case 'invalid_response':
      if (/content-type|a JSON object/.test(e.message)) return 'Check that this URL is the OP\'s endpoint: a proxy or a login page in front of the OP answers so';
      if (/"sub"|another subject/.test(e.message)) return 'The OP answered about another user than the ID token\'s: sign in again, and if it lasts, tell the OP\'s operators (a cache in front of it may mix up users)';
      return step === 'userinfo' ? 'The OP\'s userinfo answer does not fit this login: sign in again, and if it lasts, tell the OP\'s operators'
        : 'The OP\'s answer does not follow OpenID Connect: check the OP\'s settings for this client';
    case 'op_error':
      if (e.opError === 'invalid_token') return 'The OP refused the access token (revoked, expired, or for another audience): sign in again';
      return `Check providers.${provider} against the client registered at the OP (grant types, redirect URIs, scopes)`;
    default:
      return '';
  }
}

/** Whether the first frame of `e`'s stack is in a file whose path matches `where`. */
function thrownBy(e: Error, where: RegExp): boolean {
  const frame = /\n\s+at (?:.*\()?([^()\n]+?):\d+:\d+\)?/.exec(e.stack ?? '')?.[1];
  return frame !== undefined && where.test(frame);
}

/** A programming error: a built-in TypeError or ReferenceError with no code (errors of fetch, openid-client, jose and Node carry one). */
function isBug(e: Error & { code?: unknown }): boolean {
  return (e.name === 'TypeError' || e.name === 'ReferenceError') && e.code === undefined
    && (e instanceof TypeError || e instanceof ReferenceError);
}

// Replies of a Redis that is up but refuses, what someone has to change for it to serve again, and
// whether it lasts until then (a failover's READONLY may pass by itself; a full Redis under noeviction
// frees room only as keys expire, in hours: its users are not told it passes in a few seconds).
const REDIS_REFUSALS: Array<[reply: string, lasting: boolean, hint: (who: string, needs: string) => string]> = [
  ['NOAUTH', true, () => 'Redis needs a password: give it in the client\'s url (redis://:password@host:6379) or its password option'],
  ['WRONGPASS', true, () => 'the password (or user) the client gives is not Redis\'s: check the client\'s url or its username and password options'],
  ['NOPERM', true, (who, needs) => `the Redis user (ACL) may not run a command or touch a key ${who} needs: it needs ${needs}; +@all -@dangerous works`],
  ['READONLY', false, () => 'this connection reaches a read-only replica (after a failover, the old master): when a new connection to the client\'s address '
    + 'reaches the master (an endpoint that follows failovers), the client is reconnected within seconds; otherwise point the client at the current master'],
  ['OOM', true, () => 'Redis is out of memory: raise maxmemory, or find which keys grew (redis-cli --bigkeys); '
    + 'until then it refuses writes (README, "Running several instances")'],
  ['MISCONF', false, () => 'Redis refuses writes because it cannot save its snapshot: check its disk and logs'],
  ['NOREPLICAS', false, () => 'Redis refuses writes because too few replicas are connected: check the replicas'],
  ['ERR max number of clients', false, () => 'Redis has as many connections as it allows (maxclients, or the plan\'s connection limit): raise it, or find the clients that hold connections'],
];

/**
 * What to change when a Redis error `message` is a refusal someone has to fix, for `who` (what
 * sent the command), which `needs` what an ACL must allow it; undefined for any other error.
 */
export function redisRefusal(message: string, who: string, needs: string): { hint: string; lasting: boolean } | undefined {
  const found = REDIS_REFUSALS.find(([reply]) => message.startsWith(reply));
  return found && { hint: found[2](who, needs), lasting: found[1] };
}

/**
 * What a failed Redis call says, for a message: its own message, or, for node-redis's TimeoutError
 * (its `commandOptions: { timeout }`), which has none and whose `name` is "Error" (only its class says
 * it), that Redis did not answer within that timeout, taken from `client`'s options where given.
 */
export function redisFailureMessage(err: unknown, client?: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.message) return err.message;
  if (err.constructor?.name !== 'TimeoutError') return err.constructor?.name || err.name;
  const ms = (client as { options?: { commandOptions?: { timeout?: unknown } } } | undefined)?.options?.commandOptions?.timeout;
  return `Redis did not answer within the client's commandOptions.timeout${typeof ms === 'number' ? ` (${ms} ms)` : ''}`;
}

/** When each refusal (its failure's message: Redis's reply and who got it) was last said in the log. */
const refusalSaidAt = new Map<string, number>();

/**
 * Says `failure` (a Redis refusal of `reply`) where operators look, once a minute per reply and
 * caller: it needs someone to change a setting, and the users only see error pages. (Per reply only,
 * the session store's NOPERM went unsaid after redisCoordination's, which names another key pattern.)
 */
export function logRefusal(failure: RpError): void {
  sayOncePerMinute(failure.message, storeFailureLine(failure));
}

/** The log line of a failed store: what it answered and what requests get meanwhile. */
const storeFailureLine = (failure: RpError): string => `${failure.message}. Requests that need it answer 503 store_unavailable `
  + (failure.lasting ? 'until it is fixed.' : 'while it lasts (said at most once a minute).');

function sayOncePerMinute(key: string, line: string): void {
  const failure = key.replace(/\d+/g, '#'); // a port, a count, a time in the text: the same failure
  if (Date.now() - (refusalSaidAt.get(failure) ?? -Infinity) <= 60_000) return;
  setCapped(refusalSaidAt, failure, Date.now(), 100); // the failure said longest ago goes, not all of them
  console.warn(`[@openid-express/rp] ${line}`);
}

/**
 * What a visitor is shown of a failed store under `NODE_ENV=production`: not what Redis answered
 * (its ACL user, key patterns, addresses, the advice for its operators), which is said in the log
 * instead, once a minute per failure (the line {@link logRefusal} says for a refusal).
 */
export function publicStoreFailure(failure: RpError): RpError {
  sayOncePerMinute(failure.message, storeFailureLine(failure));
  const shown = new RpError('store_unavailable', 'the site\'s session store could not serve this request; what it answered is in the server\'s log',
    { retryAfter: failure.retryAfter, lasting: failure.lasting });
  if (failure.loginUrl) shown.loginUrl = failure.loginUrl;
  return shown;
}
