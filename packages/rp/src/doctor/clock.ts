/**
 * ✔ this machine's clock and the OP's (the `Date` header of its discovery answer) differ by less than
 * the 30 s tolerance the RP allows when it checks ID token times (iat, exp), or, for a client that
 * signs what it sends the OP (`private_key_jwt` / `client_secret_jwt`, request objects), the 15 s
 * oidc-provider allows for those by default.
 */
import { CLOCK_TOLERANCE } from '../id-token.js';
import { fail, meta, metadataOf, pass, skip, type CheckResult, type ProviderContext } from './types.js';

/** What oidc-provider tolerates by default for a client's assertions and request objects, in seconds. */
export const ASSERTION_CLOCK_TOLERANCE = 15;

export function checkClock(ctx: ProviderContext): CheckResult {
  // the discovery answer, else (static providerInfo) the first answer of the authorization endpoint's host
  const endpoint = meta(metadataOf(ctx), 'authorization_endpoint');
  const probe = ctx.discovery?.probe ?? (endpoint ? ctx.http.answers.get(new URL(endpoint).hostname) : undefined);
  if (!probe) return skip('no answer from the OP to read its Date header from (see discovery)');
  const date = probe.headers.get('date');
  const opTime = date ? Date.parse(date) : NaN;
  if (!Number.isFinite(opTime)) return skip(`${probe.url} sent no Date header to compare clocks with`);
  // the Date header has whole seconds (truncated): the OP's time was within [opTime, opTime + 1000) when it answered
  const local = (probe.sentAt + probe.receivedAt) / 2;
  const skewMs = opTime + 500 - local;
  const slack = 500 + (probe.receivedAt - probe.sentAt) / 2;
  const seconds = Math.round(Math.abs(skewMs) / 1000);
  const direction = skewMs > 0 ? 'ahead of' : 'behind';
  const { tokenEndpointAuthMethod: method, requestObject } = ctx.p;
  const asserts = method === 'private_key_jwt' || method === 'client_secret_jwt' || requestObject !== undefined;
  const tolerance = asserts ? ASSERTION_CLOCK_TOLERANCE : CLOCK_TOLERANCE;
  if (Math.abs(skewMs) - slack <= tolerance * 1000) {
    return pass(`the OP's clock is within ${Math.max(1, seconds)} s of this machine's (tolerance ${tolerance} s${asserts ? ', as the OP allows for this client\'s signed assertions or request objects' : ''})`);
  }
  if (asserts && Math.abs(skewMs) - slack <= CLOCK_TOLERANCE * 1000) {
    return fail(
      `the OP's clock (Date header of ${probe.url}: ${date}) is ${seconds} s ${direction} this machine's; the client signs what it sends the OP (${method === 'private_key_jwt' || method === 'client_secret_jwt' ? method : 'request objects'}), `
        + `which an OP takes only within its own tolerance (oidc-provider: ${ASSERTION_CLOCK_TOLERANCE} s), so sign-ins fail (invalid_client or invalid_request_object)`,
      'synchronize this machine\'s clock with NTP (e.g. `timedatectl set-ntp true`, chrony, or your container host\'s time sync); if this machine is right, ask the OP\'s operator to fix theirs',
    );
  }
  return fail(
    `the OP's clock (Date header of ${probe.url}: ${date}) is ${seconds} s ${direction} this machine's; ID tokens are checked with a ${CLOCK_TOLERANCE} s tolerance, so logins fail ("iat" in the future / token expired)`,
    'synchronize this machine\'s clock with NTP (e.g. `timedatectl set-ntp true`, chrony, or your container host\'s time sync); if this machine is right, ask the OP\'s operator to fix theirs',
  );
}
