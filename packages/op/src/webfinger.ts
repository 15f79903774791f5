import { domainToUnicode } from 'node:url';
import express, { type Request, type Response, type Router } from 'express';
import type { AccountStore } from './accounts.js';

/** The WebFinger rel of OIDC issuer discovery (OpenID Connect Discovery 1.0, section 2). */
export const ISSUER_REL = 'http://openid.net/specs/connect/1.0/issuer';

/** Options of `webfinger()`. */
export interface WebFingerOptions {
  /** The OP's issuer, returned as the link. */
  issuer: string;
  /**
   * Answer only for accounts this store knows (404 for anyone else). That tells anyone on the web
   * which accounts exist, so leave it out unless another OP serves the others; without it every
   * account name at the issuer's host, or at the host the request came to, gets the issuer.
   */
  accounts?: AccountStore | undefined;
}

/**
 * A host (with its port) as URLs carry it: lower case, an internationalised name as its A-label
 * (IDNA), and the same name as its U-label; undefined when it is none.
 */
function hostForms(host: string): { ascii: string; unicode: string } | undefined {
  // a host and an optional port, nothing else (RFC 7565: an RFC 3986 host): no path, query, fragment,
  // escape or user part for the URL parser to tidy away
  if (!/^(\[[0-9a-f:.]+\]|[^\s/\\?#@%[\]:]+)(:\d{1,5})?$/iu.test(host)) return undefined;
  try {
    const url = new URL(`http://${host}`);
    return { ascii: url.host, unicode: `${domainToUnicode(url.hostname)}${url.port ? `:${url.port}` : ''}` };
  } catch {
    return undefined;
  }
}

/**
 * The login names a resource may stand for: `acct:alice@host` (its user part percent-decoded, RFC
 * 7565 §7; its host compared as an A-label, so `bücher.example` and `xn--bcher-kva.example` are one)
 * and `https://host/alice`. `served`: without an account store, only names at the issuer's host or the request's.
 */
function candidates(resource: string, issuerHost: string, served?: string): string[] {
  if (resource.startsWith('acct:')) {
    const acct = resource.slice(5);
    const at = acct.lastIndexOf('@');
    if (at <= 0) return [];
    let user: string;
    try { user = decodeURIComponent(acct.slice(0, at)); } catch { return []; } // a malformed escape names nobody
    const given = acct.slice(at + 1);
    const host = hostForms(given);
    if (!user || host === undefined) return [];
    if (served !== undefined) return host.ascii === issuerHost || host.ascii === served ? [user] : [];
    // an account's e-mail may be stored with its domain in either form (IDNA: U-label or A-label)
    const spellings = [...new Set([`${user}@${given}`, `${user}@${host.ascii}`, `${user}@${host.unicode}`])];
    return host.ascii === issuerHost ? [...spellings, user] : spellings;
  }
  let url: URL;
  try { url = new URL(resource); } catch { return []; }
  if (url.protocol !== 'https:' || url.host.toLowerCase() !== issuerHost) return [];
  let name: string;
  try { name = decodeURIComponent(url.pathname.slice(1)); } catch { return []; } // a malformed escape (%zz) names nobody
  return name && !name.includes('/') ? [name] : [];
}

/** True for `https://<the issuer's host>/`, a host with nothing after it (no path, query or fragment). */
function isHostOnly(resource: string, issuerHost: string): boolean {
  const url = URL.parse(resource);
  return url !== null && url.protocol === 'https:' && url.host.toLowerCase() === issuerHost && url.pathname === '/' && !url.search && !url.hash
    && !url.username && !url.password;
}

/**
 * A router for the app's root answering `/.well-known/webfinger` with the OP as issuer (OpenID
 * Connect Discovery 1.0 §2) for `acct:` resources at the issuer's host or the host asked, and
 * `https:` resources at the issuer's host (the host alone too, §2.2.3), whether or not the account exists, as IdPyOIDC's
 * WebFinger endpoint does: the answer names the OP, never who has an account (RFC 7033 §9.2).
 * With `accounts`, only that store's accounts get an answer. oidc-provider has none.
 *
 * @example
 * app.use(webfinger({ issuer: 'https://id.example.com/op' }));
 */
export function webfinger(options: WebFingerOptions): Router {
  const issuerHost = new URL(options.issuer).host.toLowerCase();
  const router = express.Router();
  router.get('/.well-known/webfinger', (req: Request, res: Response) => {
    res.set('Access-Control-Allow-Origin', '*');
    const { resource, rel } = req.query;
    if (typeof resource !== 'string' || !resource) {
      return res.status(400).json({ error: 'invalid_request', error_description: 'exactly one "resource" parameter is required' });
    }
    const rels = rel === undefined ? [] : ([] as unknown[]).concat(rel);
    const { accounts } = options;
    const answer = () => {
      const links = rels.length === 0 || rels.includes(ISSUER_REL) ? [{ rel: ISSUER_REL, href: options.issuer }] : [];
      res.type('application/jrd+json').send(JSON.stringify({ subject: resource, links }));
    };
    // the issuer's host alone (OpenID Connect Discovery 1.0 §2.2.3: a user typed "example.com:8080",
    // normalised to https://example.com:8080/): names no account, so answered with or without a store
    if (isHostOnly(resource, issuerHost)) return answer();
    void (async () => {
      for (const login of candidates(resource, issuerHost, accounts ? undefined : hostForms(req.get('host') ?? '')?.ascii ?? '')) {
        if (!accounts || await accounts.findByLogin(login)) return answer();
      }
      res.status(404).json({ error: 'not_found', error_description: 'unknown resource' });
    })().catch(() => res.status(500).json({ error: 'server_error' }));
  });
  return router;
}
