/**
 * OpenID Provider issuer discovery by WebFinger (RFC 7033; OpenID Connect Discovery 1.0 §2):
 * "alice@example.org" → GET https://example.org/.well-known/webfinger → the issuer URL.
 */
import type { CustomFetch } from 'openid-client';
import { guardedFetch, privateNetworkError } from './network-guard.js';

/** The WebFinger link relation naming a user's OpenID Provider. */
export const ISSUER_REL = 'http://openid.net/specs/connect/1.0/issuer';

/** Refused identifier, WebFinger answer or issuer; `code` is stable. */
export class WebFingerError extends Error {
  constructor(readonly code: 'invalid_identifier' | 'webfinger_failed' | 'issuer_not_allowed', message: string) {
    super(message);
    this.name = 'WebFingerError';
  }
}

/** Options of {@link discoverIssuer}. */
export interface WebFingerOptions {
  /** Permit private / loopback hosts (development only). Default false: refused (SSRF). */
  allowPrivateNetwork?: boolean;
  /** Permit http:// (development only). Default false. */
  allowInsecureRequests?: boolean;
  /** Seconds to wait for the WebFinger answer. Default 10. */
  timeout?: number;
  /** HTTP client (tests); every request still passes the private-network guard. */
  fetchImpl?: typeof fetch;
}

/**
 * Normalizes user input into the WebFinger `resource` and the host to ask (Discovery 1.0 §2.1.2):
 * "alice@example.org" and "acct:alice@example.org" → acct URI at example.org; "example.org/alice"
 * and "https://example.org/alice" → https URL at example.org. Fragments are dropped.
 *
 * @example
 * ```ts
 * normalizeIdentifier('alice@example.org'); // { resource: 'acct:alice@example.org', host: 'example.org' }
 * ```
 */
export function normalizeIdentifier(input: string): { resource: string; host: string } {
  const value = typeof input === 'string' ? input.trim() : '';
  if (!value || value.length > 512 || /[\s<>"\\]/.test(value) || value.startsWith('#')) {
    throw new WebFingerError('invalid_identifier', 'the identifier must look like alice@example.org or https://example.org/alice');
  }
  // A scheme, unless "host:port" (Discovery 1.0 §2.1.2); only acct:, https: and http: identify users.
  const scheme = /^([a-z][a-z0-9+.-]*):(?!\d+(?:[/?#]|$))/i.exec(value)?.[1].toLowerCase();
  if (scheme && scheme !== 'acct' && scheme !== 'https' && scheme !== 'http') {
    throw new WebFingerError('invalid_identifier', 'the identifier must be an acct:, https: or http: identifier');
  }
  const withScheme = scheme
    ? value
    : value.includes('@') && !/[/?#]/.test(value) ? `acct:${value}` : `https://${value}`;
  const resource = withScheme.split('#')[0];
  if (/^acct:/i.test(resource)) {
    const host = resource.slice(resource.lastIndexOf('@') + 1);
    if (!resource.slice(5, resource.lastIndexOf('@')) || !isHost(host)) {
      throw new WebFingerError('invalid_identifier', 'an acct: identifier must be user@host');
    }
    return { resource, host: host.toLowerCase() };
  }
  let url: URL;
  try {
    url = new URL(resource);
  } catch {
    throw new WebFingerError('invalid_identifier', 'the identifier is not a valid URL or user@host');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new WebFingerError('invalid_identifier', 'the identifier must be an acct:, https: or http: identifier');
  }
  if (url.username || url.password) throw new WebFingerError('invalid_identifier', 'the identifier must not carry credentials');
  return { resource: url.href, host: url.host };
}

function isHost(host: string): boolean {
  try {
    return new URL(`https://${host}`).host === host.toLowerCase();
  } catch {
    return false;
  }
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
  const { resource, host } = normalizeIdentifier(identifier);
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
    throw new WebFingerError('webfinger_failed', `WebFinger at ${host} could not be reached`);
  }
  if (response.status !== 200) throw new WebFingerError('webfinger_failed', `WebFinger at ${host} answered HTTP ${response.status}`);
  const jrd = await readJson(response, 64 * 1024);
  const links = (jrd as { links?: unknown } | undefined)?.links;
  const link = Array.isArray(links) ? links.find((l) => l && l.rel === ISSUER_REL && typeof l.href === 'string') : undefined;
  if (!link) throw new WebFingerError('webfinger_failed', `WebFinger at ${host} names no OpenID Provider for this identifier`);
  return checkIssuerUrl(link.href as string, options);
}

/** The JSON body, or undefined when it is not JSON or larger than `limit` bytes (a stranger's server). */
async function readJson(response: Response, limit: number): Promise<unknown> {
  if (!response.body) return undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > limit) throw new WebFingerError('webfinger_failed', `the WebFinger answer is larger than ${limit} bytes`);
      chunks.push(chunk);
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    if (err instanceof WebFingerError) throw err;
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
