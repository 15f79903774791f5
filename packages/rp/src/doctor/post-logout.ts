/**
 * ✔ the post_logout_redirect_uri is registered, where the OP has an end_session_endpoint. The probe
 * opens it with `client_id` and `post_logout_redirect_uri` and no `id_token_hint`: oidc-provider (and
 * OPs like it) then asks the user to confirm the sign-out (or redirects) when the URI is registered
 * and answers an error naming post_logout_redirect_uri when it is not. An OP that refuses without saying
 * why (e.g. because it requires id_token_hint) gives a "skipped", not a guess.
 */
import { answered, networkError, opErrorText } from './http.js';
import { isAt } from './callback.js';
import { meta, pass, fail, skip, type CheckResult, type ProviderContext } from './types.js';

/** The post_logout_redirect_uri values the RP sends: the `returnTo` of logout made absolute (default "/"). */
export function postLogoutUris(ctx: ProviderContext): string[] {
  return ctx.options.postLogoutRedirectUris ?? [new URL('/', ctx.rp.options.baseURL).href];
}

export async function checkPostLogout(ctx: ProviderContext): Promise<CheckResult> {
  const { p } = ctx;
  if (p.type !== 'oidc') return skip('an OAuth 2.0 provider has no RP-initiated logout');
  if (!ctx.config) return skip('the OP\'s metadata is not usable (see above)');
  const m = ctx.config.serverMetadata() as Record<string, unknown>;
  const endpoint = meta(m, 'end_session_endpoint');
  if (!endpoint) return skip('the OP announces no end_session_endpoint: logout ends the app\'s session only');
  const issuer = meta(m, 'issuer') ?? p.issuer ?? endpoint;
  const accepted: string[] = [];
  for (const uri of postLogoutUris(ctx)) {
    const url = new URL(endpoint);
    url.searchParams.set('client_id', p.clientId);
    url.searchParams.set('post_logout_redirect_uri', uri);
    let probe;
    try {
      probe = await ctx.http.request(url.href, { headers: { accept: 'text/html' } });
    } catch (err) {
      return fail(`could not reach the end_session_endpoint ${endpoint}: ${networkError(err, ctx.http.timeoutMs)}`, `check that ${endpoint} is reachable from this machine`);
    }
    const error = opErrorText(probe);
    const register = `register ${uri} as a post_logout_redirect_uri of client "${p.clientId}" at ${issuer}${ctx.options.postLogoutRedirectUris ? '' : ' (it is where logout returns by default; other returnTo pages need registering too)'}`;
    if (probe.location) {
      if (isAt(probe.location, uri)) {
        accepted.push(uri);
        continue;
      }
      if (new URL(probe.location).origin !== new URL(endpoint).origin) return fail(`${issuer} sent a sign-out for ${uri} to ${probe.location.split('?')[0]} instead`, register);
      return skip(`${issuer} redirected to ${probe.location.split('?')[0]} without saying whether ${uri} is registered`);
    }
    const mentionsUri = /post_logout_redirect_uri|redirect[ _]ur[il]/i.test(error);
    if (probe.status >= 400 && mentionsUri) return fail(`${endpoint} ${answered(probe)} for post_logout_redirect_uri ${uri}`, register);
    if (probe.status >= 400 && /\binvalid_client\b/.test(error)) return fail(`${endpoint} does not know client "${p.clientId}": it ${answered(probe)}`, `check providers.${ctx.name}.clientId`);
    if (probe.status >= 400) return skip(`${endpoint} ${answered(probe)} to a request without id_token_hint; cannot tell whether ${uri} is registered`);
    if (probe.status === 200 && mentionsUri && /invalid|not registered|not allowed|mismatch|unknown/i.test(error)) return fail(`${endpoint} answered an error page for post_logout_redirect_uri ${uri}: ${error}`, register);
    accepted.push(uri);
  }
  return pass(`${issuer} accepts post_logout_redirect_uri ${accepted.join(', ')} for client "${p.clientId}" (it answered its sign-out page or a redirect there, not an error)`);
}
