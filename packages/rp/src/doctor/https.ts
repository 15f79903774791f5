/** ✔ the OP's endpoints are https, or http is allowed by `allowInsecureRequests` (development only). */
import { at, fail, meta, metadataOf, pass, type CheckResult, type ProviderContext } from './types.js';

const ENDPOINTS = ['issuer', 'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'end_session_endpoint'];

export function checkHttps(ctx: ProviderContext): CheckResult {
  const m = metadataOf(ctx);
  const urls = [...new Set([ctx.p.issuer, ...ENDPOINTS.map((k) => meta(m, k))].filter((u): u is string => !!u))];
  const insecure = urls.filter((u) => u.startsWith('http:'));
  if (insecure.length === 0) return pass(`${urls.length === 1 ? urls[0] : `all ${urls.length} OP URLs`} use https`);
  // "http://op.example (issuer, token_endpoint …)": one entry per origin
  const origins = new Map<string, string[]>();
  for (const [key, u] of [['issuer', ctx.p.issuer], ...ENDPOINTS.map((k) => [k, meta(m, k)])] as Array<[string, string | undefined]>) {
    if (!u?.startsWith('http:')) continue;
    const origin = new URL(u).origin;
    if (!origins.get(origin)?.includes(key)) origins.set(origin, [...(origins.get(origin) ?? []), key]);
  }
  const list = [...origins].map(([origin, keys]) => `${origin} (${keys.join(', ')})`).join(', ');
  if (!ctx.p.allowInsecureRequests) {
    return fail(
      `${list} ${origins.size === 1 ? 'is' : 'are'} http, and ${at(ctx)}.allowInsecureRequests is not set: openid-client refuses http`,
      `use the OP's https URL; for local development only, oidc({ ..., allowInsecureRequests: true })`,
    );
  }
  if (process.env.NODE_ENV === 'production') {
    return fail(
      `${list} ${origins.size === 1 ? 'is' : 'are'} http, allowed by ${at(ctx)}.allowInsecureRequests with NODE_ENV=production: tokens and codes travel unencrypted`,
      `use the OP's https URL and remove allowInsecureRequests (it is for development against a local OP)`,
    );
  }
  return pass(`${list} ${origins.size === 1 ? 'is' : 'are'} http, allowed by ${at(ctx)}.allowInsecureRequests (development only: never in production)`);
}
