/**
 * ✔ the OP's `jwks_uri` answers a JWK Set with a key that can verify its ID tokens' signatures. Every
 * sign-in downloads it; one that fails (an error page, a URL a cached discovery document still names
 * after the OP moved its keys) fails every sign-in, while discovery and the other probes look fine.
 */
import { answered, networkError } from './http.js';
import { fail, meta, metadataOf, pass, skip, type CheckResult, type ProviderContext } from './types.js';

/** Key types that verify signatures (RS*, PS*: RSA; ES*: EC; EdDSA: OKP). */
const SIGNING_KTY = new Set(['RSA', 'EC', 'OKP']);

export async function checkJwks(ctx: ProviderContext): Promise<CheckResult | undefined> {
  if (ctx.p.type === 'oauth2') return undefined; // no ID tokens to verify
  const uri = meta(metadataOf(ctx), 'jwks_uri');
  if (!uri) return skip('the OP\'s metadata names no jwks_uri (see discovery)');
  const fix = `the OP at ${uri} must answer HTTP 200 with its public keys (a JWK Set); if discovery is served through a cache or CDN, check that it names the OP's current jwks_uri; else ask the OP's operator`;
  let probe;
  try {
    probe = await ctx.http.request(uri, { headers: { accept: 'application/jwk-set+json, application/json' } });
  } catch (err) {
    return fail(`could not reach the OP's jwks_uri ${uri}: ${networkError(err, ctx.http.timeoutMs)}; every sign-in needs it`, fix);
  }
  if (probe.status !== 200) return fail(`the OP's jwks_uri ${uri} ${answered(probe)}; every sign-in needs it (its ID tokens cannot be verified)`, fix);
  let keys: unknown;
  try {
    keys = (JSON.parse(probe.text) as { keys?: unknown }).keys;
  } catch {
    return fail(`the OP's jwks_uri ${uri} answered HTTP 200 but not JSON (${probe.headers.get('content-type') ?? 'no content-type'})`, fix);
  }
  if (!Array.isArray(keys)) return fail(`the OP's jwks_uri ${uri} answered JSON without a "keys" list: not a JWK Set`, fix);
  const signing = keys.filter((k: { kty?: unknown; use?: unknown } | null) => k && SIGNING_KTY.has(String(k.kty)) && (k.use === undefined || k.use === 'sig'));
  if (!signing.length) {
    return fail(`the OP's jwks_uri ${uri} holds no public key for signatures (${keys.length} key${keys.length === 1 ? '' : 's'}, none of type RSA, EC or OKP with "use" sig or none): its ID tokens cannot be verified`, fix);
  }
  return pass(`${uri} answered ${signing.length} signing key${signing.length === 1 ? '' : 's'}`);
}
