/**
 * Provider metadata (IdPyOIDC's do_provider_info): an openid-client Configuration from discovery
 * or from static `providerInfo`, with the client authentication of the provider entry.
 */
import * as client from 'openid-client';
import { RpError } from './errors.js';
import type { ProviderConfig } from './options.js';
import { decryptIdToken, signingKey, type OwnKeys } from './keys.js';

/**
 * client_secret_basic (RFC 6749 §2.3.1): the id and the secret, each form-encoded, as the Basic
 * user and password. openid-client escapes every character but letters and digits (`my-app` is
 * sent as `my%2Dapp`); OPs that decode read both forms alike, but some OPs do not decode the
 * header at all (Glewlwyd, older Keycloak and Hydra) and refuse an id or secret with `-`, `_` or
 * `.`. So the characters that decode to themselves (`A-Z a-z 0-9 - _ . ! ~ * ' ( )`) go as they are;
 * `%`, `+`, `:`, `/`, spaces and the rest are escaped, which a decoding OP reads the same.
 */
export function clientSecretBasic(clientSecret: string): client.ClientAuth {
  return (_as, c, _body, headers) => {
    const credentials = `${encodeURIComponent(c.client_id)}:${encodeURIComponent(clientSecret)}`;
    headers.set('authorization', `Basic ${Buffer.from(credentials).toString('base64')}`);
  };
}

/**
 * The token endpoint client authentication: client_secret_basic with a secret, none without;
 * `client_secret_jwt` (HS256 over the secret) or `private_key_jwt` (a signing key of `rp({ keys })`).
 */
export function clientAuth(p: ProviderConfig, own: OwnKeys): client.ClientAuth {
  const method = p.tokenEndpointAuthMethod ?? (p.clientSecret ? 'client_secret_basic' : 'none');
  if (method === 'client_secret_post') return client.ClientSecretPost(p.clientSecret);
  if (method === 'client_secret_basic') return clientSecretBasic(p.clientSecret!);
  if (method === 'client_secret_jwt') return client.ClientSecretJwt(p.clientSecret);
  if (method === 'private_key_jwt') {
    const { key, kid } = signingKey(own, p.tokenEndpointAuthSigningAlg, `private_key_jwt at provider ${p.issuer ?? p.clientId}`);
    return client.PrivateKeyJwt({ key, kid });
  }
  return client.None();
}

/** The client metadata openid-client checks responses against (algorithms the client registered). */
function clientMetadata(p: ProviderConfig): Partial<client.ClientMetadata> {
  const m: Partial<client.ClientMetadata> = p.clientSecret ? { client_secret: p.clientSecret } : {};
  if (p.idTokenSignedResponseAlg) m.id_token_signed_response_alg = p.idTokenSignedResponseAlg;
  if (p.userinfoSignedResponseAlg) m.userinfo_signed_response_alg = p.userinfoSignedResponseAlg;
  return m;
}

/** Seconds every call to an OP may take (openid-client's default is 30 s). */
export const OP_TIMEOUT_S = 10;

/** Builds the openid-client Configuration from discovery or static metadata. */
export async function configure(p: ProviderConfig, own: OwnKeys): Promise<client.Configuration> {
  const metadata = clientMetadata(p);
  const execute: Array<(c: client.Configuration) => void> = [];
  if (p.allowInsecureRequests) execute.push(client.allowInsecureRequests);
  if (p.responseType === 'id_token' || p.responseType === 'id_token token') execute.push(client.useIdTokenResponseType);
  if (p.responseType === 'code id_token' || p.responseType === 'code id_token token') execute.push(client.useCodeIdTokenResponseType);
  let config: client.Configuration;
  if (p.providerInfo || p.allowIssuerMismatch) {
    const server = p.providerInfo ?? (await fetchDiscovery(p));
    const issuer = server.issuer ?? p.issuer ?? new URL(server.authorization_endpoint).origin;
    config = new client.Configuration({ ...server, issuer }, p.clientId, metadata, clientAuth(p, own));
  } else {
    config = await client.discovery(new URL(p.issuer!), p.clientId, metadata, clientAuth(p, own), {
      execute: p.allowInsecureRequests ? [client.allowInsecureRequests] : [],
      algorithm: p.type === 'oauth2' ? 'oauth2' : 'oidc',
      timeout: OP_TIMEOUT_S, // as every other call to the OP (openid-client's default is 30 s)
      ...(p.customFetch ? { [client.customFetch]: p.customFetch } : {}),
    });
  }
  if (p.customFetch) config[client.customFetch] = p.customFetch;
  config.timeout = OP_TIMEOUT_S;
  for (const run of execute) run(config);
  if (p.idTokenEncryptedResponseAlg) config[client.customFetch] = decryptingTokenResponses(p, own, config.serverMetadata().token_endpoint);
  return config;
}

/**
 * Encrypted ID tokens (`idTokenEncryptedResponseAlg`): the token endpoint's answer is decrypted as it
 * arrives, so openid-client checks (and the RP keeps) the signed ID token inside. One decryption path
 * for every algorithm, the client-secret-derived ones (A128KW …) included; front-channel ID tokens
 * are decrypted by `RelyingParty` the same way.
 */
function decryptingTokenResponses(p: ProviderConfig, own: OwnKeys, tokenEndpoint: string | undefined): client.CustomFetch {
  const base = p.customFetch ?? ((url, init) => fetch(url, init as RequestInit));
  return async (url, init) => {
    const response = await base(url, init);
    if (url !== tokenEndpoint || response.status !== 200) return response;
    const body = (await response.clone().json().catch(() => undefined)) as { id_token?: unknown } | undefined;
    if (typeof body?.id_token !== 'string') return response;
    body.id_token = await decryptIdToken(p, own, body.id_token);
    const headers = new Headers(response.headers);
    headers.delete('content-length');
    return new Response(JSON.stringify(body), { status: response.status, headers });
  };
}

/** Discovery without the issuer equality check (IdPyOIDC: allow.issuer_mismatch). */
async function fetchDiscovery(p: ProviderConfig): Promise<NonNullable<ProviderConfig['providerInfo']>> {
  const base = p.issuer!.replace(/\/$/, '');
  const url = `${base}/.well-known/${p.type === 'oauth2' ? 'oauth-authorization-server' : 'openid-configuration'}`;
  const doFetch = (p.customFetch as unknown as typeof fetch | undefined) ?? fetch;
  const response = await doFetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new RpError('invalid_response', `discovery at ${url} answered HTTP ${response.status}`);
  const body = (await response.json()) as Record<string, unknown>;
  if (typeof body.authorization_endpoint !== 'string') throw new RpError('invalid_response', `discovery at ${url} has no authorization_endpoint`);
  return body as NonNullable<ProviderConfig['providerInfo']>;
}
