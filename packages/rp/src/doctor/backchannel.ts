/**
 * Back-channel logout, where the OP says it supports it (`backchannel_logout_supported`): ✔ the RP's
 * endpoint answers at the URL the OP must call, {baseURL}{mountPath}/backchannel-logout/{name} (probed
 * with an empty logout token, which rp() refuses with invalid_request). Whether the client is
 * registered with that backchannel_logout_uri cannot be read from an OP (a client cannot see its own
 * registration there), so the line says what to register rather than claiming it is.
 */
import { answered, networkError } from './http.js';
import { at, fail, meta, pass, skip, type CheckResult, type ProviderContext } from './types.js';

export async function checkBackchannel(ctx: ProviderContext): Promise<CheckResult> {
  const { p } = ctx;
  if (p.type !== 'oidc') return skip('an OAuth 2.0 provider has no back-channel logout');
  if (p.backchannelLogout === false) return skip(`${at(ctx)}.backchannelLogout is false`);
  if (!ctx.config) return skip('the OP\'s metadata is not usable (see above)');
  const m = ctx.config.serverMetadata() as Record<string, unknown>;
  if (m.backchannel_logout_supported !== true) return skip('the OP does not announce backchannel_logout_supported: nothing to register');
  const { baseURL, mountPath } = ctx.rp.options;
  const url = `${baseURL}${mountPath}/backchannel-logout/${encodeURIComponent(ctx.name)}`;
  const issuer = meta(m, 'issuer') ?? p.issuer;
  const register = `register ${url} as the backchannel_logout_uri of client "${p.clientId}" at ${issuer}${m.backchannel_logout_session_supported === true ? ' (with backchannel_logout_session_required: true)' : ''}`;
  let probe;
  try {
    probe = await ctx.http.request(url, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' }, body: 'logout_token=' }, { own: true });
  } catch (err) {
    return skip(`the OP supports back-channel logout, but ${url} could not be reached from here (${networkError(err, ctx.http.timeoutMs)}), so it was not checked; ${register}`);
  }
  let error: unknown;
  try {
    error = (JSON.parse(probe.text) as { error?: unknown }).error;
  } catch {
    error = undefined;
  }
  if (probe.status === 400 && (error === 'invalid_request' || error === 'invalid_logout_token')) {
    return pass(`the OP supports back-channel logout and rp() answers at ${url}; the OP must have it as the backchannel_logout_uri of client "${p.clientId}" (an OP does not show that, so it is not checked)`);
  }
  return fail(
    `the OP supports back-channel logout, but ${url} ${answered(probe)} instead of rp()'s back-channel logout endpoint`,
    `make ${url} reach rp() (rp({ baseURL, mountPath }) must be the app's public address; a proxy must pass POSTs through), then ${register}`,
  );
}
