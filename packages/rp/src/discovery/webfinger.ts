/**
 * OpenID Provider issuer discovery by WebFinger (RFC 7033; OpenID Connect Discovery 1.0 §2):
 * "alice@example.org" → GET https://example.org/.well-known/webfinger → the issuer URL.
 */
import type { CustomFetch } from 'openid-client';
import { guardedFetch, PrivateNetworkError, privateNetworkError, readCapped } from './network-guard.js';

/** The WebFinger link relation naming a user's OpenID Provider. */
export const ISSUER_REL = 'http://openid.net/specs/connect/1.0/issuer';

/** Refused identifier, WebFinger answer or issuer; `code` is stable. */
export class WebFingerError extends Error {
  constructor(
    readonly code: 'invalid_identifier' | 'webfinger_failed' | 'issuer_not_allowed',
    message: string,
    /** The host could not be reached or answered 5xx / 429: it may pass by itself. */
    readonly transient = false,
  ) {
    super(message);
    this.name = 'WebFingerError';
  }
}

/** Options of {@link discoverIssuer}. */
export interface WebFingerOptions {
  /** Permit private / loopback hosts (development only). Default false: refused (SSRF). */
  allowPrivateNetwork?: boolean;
  /** Permit http:// (development only): http:// identifiers and issuers, WebFinger over http. Default false. */
  allowInsecureRequests?: boolean;
  /** Seconds to wait for the WebFinger answer. Default 10. */
  timeout?: number;
  /** HTTP client (tests); every request still passes the private-network guard. */
  fetchImpl?: typeof fetch;
}

/** Options of {@link normalizeIdentifier}. */
export interface IdentifierOptions {
  /** Accept http:// URL identifiers (development only). Default false: only acct: and https: identify a user. */
  allowInsecureRequests?: boolean;
}

/** Longest identifier accepted, in characters (an e-mail address is at most 254). */
export const MAX_IDENTIFIER_LENGTH = 512;

const EXPECTED = 'expected an account such as alice@example.org or acct:alice@example.org, or a URL such as https://example.org/alice';

/** Refuses the identifier: what is wrong with it, then the forms accepted. Echoes no more of the input than a scheme name. */
function invalid(problem: string): never {
  throw new WebFingerError('invalid_identifier', `${problem}; ${EXPECTED}`);
}

/**
 * Normalizes user input into the WebFinger `resource` and the host (with its port) to ask, as
 * OpenID Connect Discovery 1.0 §2.1 does:
 *
 * - `joe@example.com` → `acct:joe@example.com` at `example.com` (§2.2.1); `joe@example.com:8080`
 *   → `acct:joe@example.com:8080` at `example.com:8080`; an "@" inside the user part is written
 *   `%40` (`juliet@capulet.example@shopping.example.com` → `acct:juliet%40capulet.example@shopping.example.com`);
 * - `acct:juliet%40capulet.example@shopping.example.com` is used as written, at `shopping.example.com` (§2.2.4);
 * - anything else is a URL, `https://` when it has no scheme: `https://example.com/joe` (§2.2.2),
 *   `example.com:8080` → `https://example.com:8080/` at `example.com:8080` (§2.2.3),
 *   `example.com:8080/joe?x=1` → `https://example.com:8080/joe?x=1`;
 * - the fragment is always dropped: `https://example.com/joe#foo` → `https://example.com/joe`.
 *
 * Refused (`invalid_identifier`): empty or over {@link MAX_IDENTIFIER_LENGTH} characters, spaces or
 * control characters, XRIs (`=`, `@`, `!` first, §2.1.1), schemes other than acct: and https:
 * (http: only with `allowInsecureRequests`), a URL without a host or with `user[:password]@`
 * (RFC 9110 §4.2.4), an acct: URI without user or host, a bad port, IPv6 addresses not in brackets.
 *
 * @example
 * ```ts
 * normalizeIdentifier('alice@example.org'); // { resource: 'acct:alice@example.org', host: 'example.org' }
 * normalizeIdentifier('example.org:8080/alice#x'); // { resource: 'https://example.org:8080/alice', host: 'example.org:8080' }
 * ```
 */
export function normalizeIdentifier(input: string, options: IdentifierOptions = {}): { resource: string; host: string } {
  const value = typeof input === 'string' ? input.trim() : '';
  if (!value) invalid('the identifier is empty');
  if (value.length > MAX_IDENTIFIER_LENGTH) invalid(`the identifier is too long (${value.length} characters, at most ${MAX_IDENTIFIER_LENGTH})`);
  if (/[\s\p{Cc}\p{Cf}<>"\\]/u.test(value)) invalid('the identifier contains a space, a control character or one of < > " \\');
  if (value.startsWith('#')) invalid('the identifier is only a fragment ("#...")');
  // §2.1.1: "=", "@" and "!" first are XRI global context symbols, out of scope.
  if (/^[=@!]/.test(value)) invalid(`an identifier starting with "${value[0]}" is an XRI, which is not supported`);
  // A scheme (RFC 3986 §3.1), unless the input is host:port (§2.2.3: "example.com:8080" is an authority).
  const scheme = (/^(acct|https?):/i.exec(value) ?? /^([a-z][a-z0-9+.-]*):(?!\d+(?:[/?#]|$)|$)/i.exec(value))?.[1].toLowerCase();
  const withoutFragment = value.split('#')[0];
  if (scheme === 'acct') return acctIdentifier(withoutFragment.slice(5), false);
  if (scheme === 'https' || scheme === 'http') return urlIdentifier(withoutFragment, scheme, options);
  if (scheme) invalid(`"${scheme}:" identifiers are not supported (only acct: and https:)`);
  // No scheme (§2.1.2): user@host[:port] without path or query is an account; the rest is https.
  // (With a port, the letter of §2.1.2 gives https://user@host:port, a URL with userinfo; the same
  // host and port are asked either way, and the acct: form is kept.)
  const at = withoutFragment.lastIndexOf('@');
  if (at >= 0 && !/[/?]/.test(withoutFragment)) {
    // An "@" inside the user part is percent-encoded (§2.1.2, acct URI: RFC 7565).
    return acctIdentifier(`${withoutFragment.slice(0, at).replaceAll('@', '%40')}${withoutFragment.slice(at)}`, true);
  }
  return urlIdentifier(`https://${withoutFragment}`, 'https', options);
}

/** `user@host[:port]` (after "acct:"): the resource as written, and the host to ask. */
function acctIdentifier(account: string, typedWithoutScheme: boolean): { resource: string; host: string } {
  const at = account.lastIndexOf('@');
  if (at < 0) invalid('an acct: identifier needs "@" between the user and the host');
  const user = account.slice(0, at);
  if (!user) invalid('an account identifier needs a user before "@"');
  const host = account.slice(at + 1);
  if (!host) invalid('an account identifier needs a host after "@"');
  if (/[/?]/.test(host)) invalid('an account identifier ends with the host (and port): no path or query after it');
  if (!typedWithoutScheme && user.includes('@')) {
    invalid('the user part of an acct: URI must write "@" as %40 (as in acct:juliet%40capulet.example@shopping.example.com)');
  }
  // RFC 7565 userpart: unreserved / sub-delims / percent-encoded (non-ASCII is accepted and sent UTF-8 encoded).
  if (!/^(?:[\w.~!$&'()*+,;=-]|[^\x00-\x7f]|%[0-9a-f]{2})+$/i.test(user)) {
    invalid('the user part of an account identifier may hold letters, digits and - . _ ~ ! $ & \' ( ) * + , ; = or %XX escapes');
  }
  return { resource: `acct:${account}`, host: webfingerHost(host) };
}

/** An http(s) URL identifier (fragment already removed): the URL, and its host to ask. */
function urlIdentifier(value: string, scheme: 'https' | 'http', options: IdentifierOptions): { resource: string; host: string } {
  if (scheme === 'http' && !options.allowInsecureRequests) {
    invalid('an http:// identifier is refused, use https:// (http:// is accepted only with the development option allowInsecureRequests)');
  }
  const authority = /^https?:\/\/([^/?#]*)/i.exec(value)?.[1];
  if (!authority) invalid(`a URL identifier needs a host right after "${scheme}://"`);
  if (authority.includes('@')) {
    invalid('a URL identifier must not carry a user name or password before the host ("user@" or "user:password@"); an account is written without path or query');
  }
  const host = webfingerHost(authority);
  return { resource: new URL(value).href, host };
}

/** The WebFinger host of an authority `host[:port]` (RFC 3986 §3.2.2–3.2.3): a name, an IPv4 address or a [bracketed] IPv6 address. */
function webfingerHost(authority: string): string {
  const parts = /^(\[[^\]]*\]|[^:[\]]+)(?::(\d*))?$/.exec(authority);
  if (!parts) {
    if (!authority.startsWith('[') && authority.split(':').length > 2) invalid('an IPv6 address must be written in brackets, as in [2001:db8::1]:8443');
    invalid('the host must be a name or an IP address, optionally followed by ":" and a port');
  }
  const [, name, port] = parts;
  if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
    invalid('the port after the host must be a number from 1 to 65535');
  }
  let url: URL;
  try {
    url = new URL(`https://${name}`);
  } catch {
    invalid(name.startsWith('[') ? 'the host is not a valid IPv6 address' : 'the host is not a valid host name or IP address');
  }
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) invalid('the host is not a valid host name or IP address');
  // The port as given (an explicit :443 stays: the request may be http:// in development).
  return port === undefined ? url.hostname : `${url.hostname}:${Number(port)}`;
}

/**
 * Asks the identifier's host which OpenID Provider serves it; returns the issuer URL.
 *
 * @example
 * ```ts
 * const issuer = await discoverIssuer('alice@example.org'); // 'https://id.example.org'
 * ```
 */
export async function discoverIssuer(identifier: string, options: WebFingerOptions = {}): Promise<string> {
  const { resource, host } = normalizeIdentifier(identifier, options);
  // WebFinger is https only (RFC 7033 §4); http: is a development opt-in.
  const url = new URL(`${options.allowInsecureRequests ? 'http' : 'https'}://${host}/.well-known/webfinger`);
  url.searchParams.set('resource', resource);
  url.searchParams.set('rel', ISSUER_REL);
  const customFetch: CustomFetch = guardedFetch(options);
  let response: Response;
  try {
    response = await customFetch(url.href, {
      method: 'GET', headers: { accept: 'application/jrd+json, application/json' }, body: undefined, redirect: 'manual',
      signal: AbortSignal.timeout((options.timeout ?? 10) * 1000),
    });
  } catch (err) {
    const refused = privateNetworkError(err);
    if (refused) throw refused;
    // a name with no DNS entry at all is a typo, not an outage (EAI_AGAIN, a resolver that failed, is)
    if (errorCodes(err).includes('ENOTFOUND')) {
      throw new WebFingerError('invalid_identifier', `the domain ${host} does not exist (it has no DNS entry): check what follows the "@"`);
    }
    throw new WebFingerError('webfinger_failed', `WebFinger at ${host} could not be reached`, true);
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    throw new WebFingerError('webfinger_failed', `WebFinger at ${host} answered HTTP ${response.status}`, response.status >= 500 || response.status === 429);
  }
  const jrd = await readJson(response, 64 * 1024);
  const links = (jrd as { links?: unknown } | undefined)?.links;
  const link = Array.isArray(links) ? links.find((l) => l && l.rel === ISSUER_REL && typeof l.href === 'string') : undefined;
  if (!link) throw new WebFingerError('webfinger_failed', `WebFinger at ${host} names no OpenID Provider for this identifier`);
  return checkIssuerUrl(link.href as string, options);
}

/** The JSON body, or undefined when it is not JSON; larger than `limit` bytes (a stranger's server) is a `webfinger_failed`. */
async function readJson(response: Response, limit: number): Promise<unknown> {
  let body: Uint8Array;
  try {
    body = await readCapped(response, limit);
  } catch {
    throw new WebFingerError('webfinger_failed', `the WebFinger answer is larger than ${limit} bytes`);
  }
  try {
    return JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    return undefined;
  }
}

/** An issuer identifier: https (http only with allowInsecureRequests), no query or fragment. */
function checkIssuerUrl(href: string, options: WebFingerOptions): string {
  let issuer: URL;
  try {
    issuer = new URL(href);
  } catch {
    throw new WebFingerError('webfinger_failed', 'WebFinger named an issuer that is not a URL');
  }
  const schemeOk = issuer.protocol === 'https:' || (options.allowInsecureRequests === true && issuer.protocol === 'http:');
  if (!schemeOk || issuer.search || issuer.hash || issuer.username || issuer.password) {
    throw new WebFingerError('webfinger_failed', 'WebFinger named an issuer that is not an https URL without query or fragment');
  }
  return href;
}

/** The `code`s of an error and of its causes (fetch wraps the network error). */
function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i += 1) {
    if (typeof e.code === 'string') codes.push(e.code);
  }
  return codes;
}
