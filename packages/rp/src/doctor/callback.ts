/**
 * ✔ the callback URL is a registered redirect URI of the client. The probe opens the authorization
 * endpoint with `prompt=none` and the callback as `redirect_uri`: an OP sends the browser back to a
 * registered redirect URI (with `error=login_required`, since no one is signed in) and shows its own
 * error page for any other.
 */
import * as client from 'openid-client';
import { answered, networkError, opErrorText, type Probe } from './http.js';
import { at, fail, meta, pass, skip, type CheckResult, type ProviderContext } from './types.js';

/** Errors an OP sends back to the redirect URI that still say the redirect URI is wrong (GitHub does). */
const REDIRECT_ERRORS = new Set(['redirect_uri_mismatch', 'invalid_redirect_uri']);

/** True when `url` is `base` itself or `base` followed by its query or fragment. */
export function isAt(url: string, base: string): boolean {
  return url === base || url.startsWith(`${base}?`) || url.startsWith(`${base}#`);
}

/** The parameters of a redirect back (query or fragment). */
function responseParams(url: string): URLSearchParams {
  const u = new URL(url);
  return new URLSearchParams(u.hash ? u.hash.slice(1) : u.search);
}

/** The action of an auto-submitting form (response_mode=form_post), if the page has one. */
function formAction(html: string): string | undefined {
  const action = /<form[^>]*action="([^"]+)"/i.exec(html)?.[1];
  return action?.replace(/&amp;/g, '&');
}

export async function checkCallback(ctx: ProviderContext): Promise<CheckResult> {
  const { p } = ctx;
  if (!ctx.config) return skip('the OP\'s metadata is not usable (see above)');
  const m = ctx.config.serverMetadata() as Record<string, unknown>;
  const endpoint = meta(m, 'authorization_endpoint');
  if (!endpoint) return skip('the OP announces no authorization_endpoint');
  const callback = ctx.rp.callbackUrl(ctx.name);
  const issuer = meta(m, 'issuer') ?? p.issuer ?? endpoint;
  const url = new URL(endpoint);
  const { prompt: _prompt, ...extra } = p.authorizationParams ?? {};
  const params: Record<string, string> = {
    ...extra,
    client_id: p.clientId,
    redirect_uri: callback,
    response_type: p.responseType ?? 'code',
    scope: p.scope,
    state: client.randomState(),
    prompt: 'none',
  };
  if (p.type === 'oidc') params.nonce = client.randomNonce();
  if (p.pkce !== false && params.response_type.startsWith('code')) {
    params.code_challenge = await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier());
    params.code_challenge_method = 'S256';
  }
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);

  const register = `register ${callback} as a redirect URI of client "${p.clientId}" at ${issuer} (exactly: scheme, host, port and path; it is baseURL + mountPath + /callback/${ctx.name}, so also check rp({ baseURL: "${ctx.rp.options.baseURL}" }))`;
  let probe: Probe | undefined;
  let next = url.href;
  // an OP may redirect within itself first (e.g. to a sign-in page); follow it while it stays at the OP
  for (let hop = 0; hop < 5; hop++) {
    try {
      probe = await ctx.http.request(next, { headers: { accept: 'text/html' } });
    } catch (err) {
      return fail(`could not reach the authorization endpoint ${endpoint}: ${networkError(err, ctx.http.timeoutMs)}`, `check that ${endpoint} is reachable from this machine`);
    }
    if (!probe.location) break;
    if (isAt(probe.location, callback)) {
      const back = responseParams(probe.location);
      const error = back.get('error');
      if (error && REDIRECT_ERRORS.has(error)) return fail(`${issuer} sent ${error} back: ${callback} is not a redirect URI of client "${p.clientId}"`, register);
      return pass(`${issuer} sent a prompt=none request back to ${callback}${error ? ` (${error})` : ''}: it is a registered redirect URI`);
    }
    if (new URL(probe.location).origin !== new URL(endpoint).origin) {
      return fail(`${issuer} redirected a prompt=none request for ${callback} to ${probe.location.split('?')[0]} instead of the callback`, register);
    }
    next = probe.location;
  }
  probe = probe!;
  if (probe.location) return skip(`${issuer} kept redirecting within itself (last: ${probe.location.split('?')[0]}); cannot tell whether ${callback} is registered`);
  const action = formAction(probe.text);
  if (probe.status === 200 && action && isAt(action, callback)) return pass(`${issuer} posted a prompt=none answer to ${callback}: it is a registered redirect URI`);
  const error = opErrorText(probe);
  if (/\binvalid_client\b/.test(error) || (probe.status === 401 && /client/i.test(error))) {
    return fail(`the authorization endpoint ${endpoint} does not know client "${p.clientId}": it ${answered(probe)}`, `check ${at(ctx)}.clientId; register the client at ${issuer}`);
  }
  if (probe.status >= 500) return fail(`the authorization endpoint ${endpoint} ${answered(probe)}`, `the OP at ${issuer} is failing: try again, or ask its operator`);
  if (probe.status >= 400 || /redirect[_ ]ur[il]/i.test(error)) {
    return fail(`${issuer} refused redirect_uri ${callback}: the authorization endpoint ${answered(probe)} instead of redirecting back`, register);
  }
  return skip(`${issuer} answered a page (HTTP ${probe.status}) instead of redirecting back (it may show its sign-in page despite prompt=none); cannot tell whether ${callback} is registered`);
}
