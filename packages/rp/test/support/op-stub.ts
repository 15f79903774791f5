/**
 * A hand-written, deliberately misbehaving OP for the checks a real oidc-provider cannot be made
 * to fail (wrong nonce / aud / iss, expired or badly signed ID token, unknown kid, forged logout
 * tokens). Serves discovery, a JWKS and a token endpoint; the ID token it returns is built by the
 * test (`stub.idToken = (claims) => jwt`). The authorization step is skipped: the test calls the
 * RP callback itself with `code=stub-code` and the state of the login it started.
 */
import { createServer, type Server } from 'node:http';
import express from 'express';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import { close, listen } from './rp-app.js';

export interface StubOp {
  issuer: string;
  /** The key the stub publishes in its JWKS. */
  key: CryptoKey;
  kid: string;
  /** JWKS downloads so far. */
  jwksRequests: number;
  /** Builds the ID token of the next token response from the well-formed default claims. */
  idToken: (defaults: JWTPayload) => Promise<string>;
  /** Extra metadata in the discovery document (e.g. a different `issuer`). */
  metadata: Record<string, unknown>;
  /** The public keys the JWKS serves (default: the stub's one RS256 key); tests may add or strip keys. */
  keys: JWK[];
  /** A refresh token to include in token responses (none by default). */
  refreshToken?: string;
  /** When set, the token endpoint answers this instead of tokens (an error as some OPs send it). */
  tokenAnswer?: { status: number; body?: string; headers?: Record<string, string> };
  /** Claims the userinfo endpoint answers with (the stub advertises it only when set). */
  userinfo?: Record<string, unknown>;
  /** When set, the userinfo endpoint answers this instead of the claims. */
  userinfoAnswer?: { status: number; body?: string; headers?: Record<string, string> };
  /** Token and userinfo requests as received (headers and form body), newest last. */
  requests: Array<{ path: string; headers: Record<string, string | string[] | undefined>; body: Record<string, string> }>;
  /** A fresh key pair for `alg` (e.g. ES256); its public JWK is not published until pushed to `keys`. */
  newKey(alg: string, kid?: string): Promise<{ privateKey: CryptoKey; jwk: JWK }>;
  sign(payload: JWTPayload, opts?: { key?: CryptoKey | Uint8Array; kid?: string | null; alg?: string; typ?: string; header?: Record<string, unknown> }): Promise<string>;
  close(): Promise<void>;
}

export async function startStubOp(clientId: string): Promise<StubOp> {
  const server: Server = createServer();
  const issuer = await listen(server);
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'stub-key-1', use: 'sig', alg: 'RS256' };
  const stub: StubOp = {
    issuer,
    key: privateKey,
    kid: jwk.kid!,
    jwksRequests: 0,
    metadata: {},
    keys: [jwk],
    requests: [],
    async newKey(alg, kid) {
      const pair = await generateKeyPair(alg, { extractable: true });
      return { privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), ...(kid ? { kid } : {}), use: 'sig', alg } };
    },
    async sign(payload, opts = {}) {
      // kid: null signs without a kid header (rp-id_token-kid-absent-*)
      const kid = opts.kid === null ? {} : { kid: opts.kid ?? stub.kid };
      return new SignJWT(payload)
        .setProtectedHeader({ alg: opts.alg ?? 'RS256', ...kid, ...(opts.typ ? { typ: opts.typ } : {}), ...opts.header })
        .sign(opts.key ?? stub.key);
    },
    idToken: (defaults) => stub.sign(defaults),
    close: () => close(server),
  };
  let lastNonce: string | undefined;
  const app = express();
  app.get('/.well-known/openid-configuration', (_req, res) => {
    res.json({
      issuer,
      authorization_endpoint: `${issuer}/authorize`,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
      ...(stub.userinfo ? { userinfo_endpoint: `${issuer}/userinfo` } : {}),
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      ...stub.metadata,
    });
  });
  app.get('/jwks', (_req, res) => {
    stub.jwksRequests += 1;
    res.json({ keys: stub.keys });
  });
  // the test tells the stub which nonce the RP sent (it reads it from the authorization URL)
  app.post('/nonce', express.text(), (req, res) => {
    lastNonce = String(req.body);
    res.end();
  });
  app.get('/userinfo', (req, res) => {
    stub.requests.push({ path: '/userinfo', headers: req.headers, body: {} });
    if (stub.userinfoAnswer) return void res.status(stub.userinfoAnswer.status).set(stub.userinfoAnswer.headers ?? {}).end(stub.userinfoAnswer.body);
    if (!stub.userinfo || req.headers.authorization !== 'Bearer stub-access-token') return void res.status(401).json({ error: 'invalid_token' });
    res.json(stub.userinfo);
  });
  app.post('/token', express.urlencoded({ extended: false }), async (req, res) => {
    stub.requests.push({ path: '/token', headers: req.headers, body: req.body as Record<string, string> });
    if (stub.tokenAnswer) return void res.status(stub.tokenAnswer.status).set(stub.tokenAnswer.headers ?? {}).end(stub.tokenAnswer.body);
    const now = Math.floor(Date.now() / 1000);
    const idToken = await stub.idToken({ iss: issuer, aud: clientId, sub: 'mallory', iat: now, exp: now + 300, nonce: lastNonce });
    res.json({ access_token: 'stub-access-token', token_type: 'Bearer', expires_in: 300, id_token: idToken, ...(stub.refreshToken ? { refresh_token: stub.refreshToken } : {}) });
  });
  server.on('request', app);
  return stub;
}
