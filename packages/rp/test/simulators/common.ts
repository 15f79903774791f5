/**
 * Pieces shared by the loopback simulators of third-party providers: a listening server, an RS256
 * signer publishing its JWKS (jose), one-time codes with PKCE, and client authentication parsing.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';

/** A started simulator: its origin and how to stop it. */
export interface Listening {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Listen on a loopback port chosen by the OS. `host` lets a test put the provider on another site. */
export async function listen(app: express.Express, host = '127.0.0.1'): Promise<Listening> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An RS256 key pair; `sign()` makes a real JWT, `jwks` is what the provider publishes. */
export interface Signer {
  kid: string;
  jwks: { keys: JWK[] };
  sign(claims: Record<string, unknown>, key?: 'own' | 'foreign'): Promise<string>;
}

export async function createSigner(): Promise<Signer> {
  const kid = randomBytes(8).toString('hex');
  const own = await generateKeyPair('RS256', { extractable: true });
  // A key the provider never published: for "badly signed" tokens.
  const foreign = await generateKeyPair('RS256');
  const publicJwk = { ...(await exportJWK(own.publicKey)), kid, alg: 'RS256', use: 'sig' };
  return {
    kid,
    jwks: { keys: [publicJwk] },
    sign: (claims, key = 'own') =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
        .sign(key === 'own' ? own.privateKey : foreign.privateKey),
  };
}

/** `at_hash`/`c_hash` for RS256: left half of SHA-256, base64url (OIDC Core 3.1.3.6). */
export function halfHash(value: string): string {
  return createHash('sha256').update(value).digest().subarray(0, 16).toString('base64url');
}

/** A random opaque token with a provider-style prefix (e.g. "gho_"). */
export function opaque(prefix = ''): string {
  return prefix + randomBytes(24).toString('base64url');
}

/** What an authorization request left behind for the token endpoint. */
export interface CodeGrant {
  clientId: string;
  redirectUri: string;
  scope: string;
  nonce?: string;
  codeChallenge?: string;
  codeChallengeMethod?: string;
  [extra: string]: unknown;
}

/** One-time authorization codes: a code is consumed by its first redemption, valid or not. */
export class CodeStore {
  private readonly codes = new Map<string, CodeGrant & { expiresAt: number }>();

  issue(grant: CodeGrant, prefix = ''): string {
    const code = opaque(prefix);
    this.codes.set(code, { ...grant, expiresAt: Date.now() + 10 * 60_000 });
    return code;
  }

  consume(code: unknown): CodeGrant | undefined {
    if (typeof code !== 'string') return undefined;
    const grant = this.codes.get(code);
    this.codes.delete(code);
    return grant && grant.expiresAt > Date.now() ? grant : undefined;
  }
}

/** RFC 7636 check of a code_verifier against the stored challenge (no challenge: no verifier needed). */
export function pkceOk(grant: CodeGrant, verifier: unknown): boolean {
  if (!grant.codeChallenge) return verifier === undefined;
  if (typeof verifier !== 'string') return false;
  if (grant.codeChallengeMethod === 'S256') {
    return createHash('sha256').update(verifier).digest('base64url') === grant.codeChallenge;
  }
  return verifier === grant.codeChallenge;
}

/** Client credentials from HTTP Basic (RFC 6749 §2.3.1, form-urlencoded parts) or the body. */
export function clientCredentials(req: express.Request): { clientId?: string; clientSecret?: string; method: string } {
  const header = req.headers.authorization;
  if (header?.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString();
    const i = decoded.indexOf(':');
    return {
      clientId: decodeURIComponent(decoded.slice(0, i)),
      clientSecret: decodeURIComponent(decoded.slice(i + 1)),
      method: 'client_secret_basic',
    };
  }
  const body = (req.body ?? {}) as Record<string, string>;
  return { clientId: body.client_id, clientSecret: body.client_secret, method: body.client_secret ? 'client_secret_post' : 'none' };
}

/** The Bearer (or GitHub's legacy "token") credential of a request. */
export function bearer(req: express.Request): string | undefined {
  const match = /^(?:Bearer|token) (\S+)$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}

/** A redirect back to the client with the given parameters in the query. */
export function redirectWith(res: express.Response, redirectUri: string, params: Record<string, string | undefined>): void {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  res.redirect(302, url.href);
}

/** The auto-submitting HTML page of `response_mode=form_post` (OAuth 2.0 Form Post Response Mode). */
export function formPostPage(res: express.Response, redirectUri: string, params: Record<string, string | undefined>): void {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  const inputs = Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v!)}"/>`)
    .join('');
  res
    .status(200)
    .type('html')
    .set('cache-control', 'no-store')
    .send(
      `<html><head><title>Working...</title></head><body onload="javascript:document.forms[0].submit()">` +
        `<form method="POST" name="hiddenform" action="${esc(redirectUri)}">${inputs}` +
        `<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit"/></noscript>` +
        `</form></body></html>`,
    );
}

/** JSON error the OAuth way (RFC 6749 §5.2). */
export function oauthError(res: express.Response, status: number, error: string, description: string): void {
  res.status(status).set('cache-control', 'no-store').json({ error, error_description: description });
}

/** Seconds since the epoch. */
export const now = (): number => Math.floor(Date.now() / 1000);
