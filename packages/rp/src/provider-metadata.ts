/**
 * Provider metadata (the seed's do_provider_info): an openid-client Configuration from discovery
 * or from static `providerInfo`, with the client authentication of the provider entry.
 */
import * as client from 'openid-client';
import { RpError } from './errors.js';
import type { ProviderConfig } from './options.js';

/** The token endpoint client authentication: client_secret_basic with a secret, none without. */
export function clientAuth(p: ProviderConfig): client.ClientAuth {
  const method = p.tokenEndpointAuthMethod ?? (p.clientSecret ? 'client_secret_basic' : 'none');
  if (method === 'client_secret_post') return client.ClientSecretPost(p.clientSecret);
  if (method === 'client_secret_basic') return client.ClientSecretBasic(p.clientSecret);
  return client.None();
}

/** Builds the openid-client Configuration from discovery or static metadata. */
export async function configure(p: ProviderConfig): Promise<client.Configuration> {
  const metadata: Partial<client.ClientMetadata> = p.clientSecret ? { client_secret: p.clientSecret } : {};
  const execute: Array<(c: client.Configuration) => void> = [];
  if (p.allowInsecureRequests) execute.push(client.allowInsecureRequests);
  if (p.responseType === 'id_token') execute.push(client.useIdTokenResponseType);
  let config: client.Configuration;
  if (p.providerInfo || p.allowIssuerMismatch) {
    const server = p.providerInfo ?? (await fetchDiscovery(p));
    const issuer = server.issuer ?? p.issuer ?? new URL(server.authorization_endpoint).origin;
    config = new client.Configuration({ ...server, issuer }, p.clientId, metadata, clientAuth(p));
  } else {
    config = await client.discovery(new URL(p.issuer!), p.clientId, metadata, clientAuth(p), {
      execute: p.allowInsecureRequests ? [client.allowInsecureRequests] : [],
      algorithm: p.type === 'oauth2' ? 'oauth2' : 'oidc',
      ...(p.customFetch ? { [client.customFetch]: p.customFetch } : {}),
    });
  }
  if (p.customFetch) config[client.customFetch] = p.customFetch;
  config.timeout = 10;
  for (const run of execute) run(config);
  return config;
}

/** Discovery without the issuer equality check (seed: allow.issuer_mismatch). */
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
