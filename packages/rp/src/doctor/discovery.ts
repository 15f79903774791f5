/**
 * ✔ the OP's discovery document answers at the URL the RP asks (`{issuer}/.well-known/openid-configuration`,
 * or RFC 8414's `oauth-authorization-server` for OAuth 2.0 providers).
 */
import { networkError, answered } from './http.js';
import { at, fail, pass, skip, type CheckResult, type DiscoveryResult, type ProviderContext } from './types.js';

/** The discovery URL openid-client (or, with allowIssuerMismatch, the RP) fetches for this provider. */
export function discoveryUrl(ctx: ProviderContext): string {
  const { p } = ctx;
  if (p.allowIssuerMismatch) return `${p.issuer!.replace(/\/$/, '')}/.well-known/${p.type === 'oauth2' ? 'oauth-authorization-server' : 'openid-configuration'}`;
  const url = new URL(p.issuer!);
  if (p.type === 'oauth2') {
    // RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path
    url.pathname = url.pathname === '/' ? '/.well-known/oauth-authorization-server' : `/.well-known/oauth-authorization-server${url.pathname.replace(/\/$/, '')}`;
  } else {
    url.pathname = `${url.pathname}/.well-known/openid-configuration`.replace(/\/\/+/g, '/');
  }
  return url.href;
}

/** Fetches the discovery document (kept in `ctx.discovery` for the issuer, https and clock checks). */
export async function fetchDiscovery(ctx: ProviderContext): Promise<DiscoveryResult> {
  const url = discoveryUrl(ctx);
  let probe;
  try {
    probe = await ctx.http.request(url, { headers: { accept: 'application/json' } });
  } catch (err) {
    return { url, error: `could not reach ${url}: ${networkError(err, ctx.http.timeoutMs)}` };
  }
  if (probe.status >= 300 && probe.status < 400) {
    return { url, probe, error: `${url} redirects (HTTP ${probe.status}) to ${probe.location ?? 'nowhere'}; the RP does not follow redirects at discovery` };
  }
  if (probe.status !== 200) return { url, probe, error: `${url} ${answered(probe)}` };
  let metadata: unknown;
  try {
    metadata = JSON.parse(probe.text);
  } catch {
    return { url, probe, error: `${url} answered HTTP 200 but not JSON (${probe.headers.get('content-type') ?? 'no content-type'})` };
  }
  if (!metadata || typeof metadata !== 'object' || typeof (metadata as Record<string, unknown>).authorization_endpoint !== 'string') {
    return { url, probe, error: `${url} answered a JSON document without authorization_endpoint: not OP metadata` };
  }
  return { url, probe, metadata: metadata as Record<string, unknown> };
}

export function checkDiscovery(ctx: ProviderContext): CheckResult {
  if (!ctx.discovery) return skip(`static ${at(ctx)}.providerInfo is used: no discovery`);
  const { url, error, probe } = ctx.discovery;
  if (!error) return pass(`${url} answered HTTP 200 with the OP's metadata`);
  const issuer = ctx.p.issuer!;
  if (!probe) {
    return fail(error, `check ${at(ctx)}.issuer ("${issuer}") and that the OP is reachable from this machine (DNS, firewall, outgoing proxy)`);
  }
  if (probe.status >= 500) return fail(error, `the OP at ${issuer} is failing: try again, or ask its operator`);
  return fail(error, `check ${at(ctx)}.issuer ("${issuer}"): it must be the OP's issuer identifier exactly, the URL its discovery document is served under (${url} must answer HTTP 200)`);
}
