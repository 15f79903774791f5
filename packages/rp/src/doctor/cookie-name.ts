/**
 * ✔ no OP on the app's host sets a cookie with the session cookie's name. Browsers keep cookies per host,
 * not per port: an OP at http://localhost:3001 and the app at http://localhost:3000 share cookies, and
 * one named like the other's overwrites it. The OP's cookie names are those it set during the doctor's
 * probes (an OP that set none then cannot be compared, which the line says).
 */
import * as client from 'openid-client';
import { fail, pass, skip, type AppContext, type CheckResult, type ProviderContext } from './types.js';

/**
 * For an OP on the app's host that set no cookie during the other probes: opens its sign-in (the
 * authorization endpoint without prompt=none, redirects followed within the OP), where OPs set theirs.
 * Nothing is submitted; the OP may keep the started sign-in until it expires.
 */
export async function collectOpCookies(ctx: ProviderContext): Promise<void> {
  const host = new URL(ctx.rp.options.baseURL).hostname;
  const endpoint = ctx.config?.serverMetadata().authorization_endpoint;
  if (!endpoint || new URL(endpoint).hostname !== host || ctx.http.cookies.get(host)?.size) return;
  const url = new URL(endpoint);
  const params: Record<string, string> = {
    client_id: ctx.p.clientId, redirect_uri: ctx.rp.callbackUrl(ctx.name), response_type: ctx.p.responseType ?? 'code', scope: ctx.p.scope,
    state: client.randomState(), nonce: client.randomNonce(),
  };
  if (ctx.p.pkce !== false && params.response_type.startsWith('code')) {
    params.code_challenge = await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier());
    params.code_challenge_method = 'S256';
  }
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  let next: string | undefined = url.href;
  for (let hop = 0; hop < 3 && next && new URL(next).origin === url.origin; hop++) {
    next = (await ctx.http.request(next, { headers: { accept: 'text/html' } }).catch(() => undefined))?.location;
  }
}

export function checkCookieName(ctx: AppContext): CheckResult {
  const name = ctx.session?.name;
  if (!ctx.session || ctx.session.problem || name === undefined) return skip('the session cookie name is unknown (see session)');
  const host = new URL(ctx.rp.options.baseURL).hostname;
  const sharing = ctx.opHosts.filter((op) => op.hosts.includes(host));
  if (sharing.length === 0) return pass(`cookie "${name}": no OP shares the app's host ${host}`);
  const seen = [...(ctx.http.cookies.get(host) ?? [])];
  const ops = sharing.map((op) => `"${op.name}" (${op.issuer})`).join(', ');
  if (seen.includes(name)) {
    return fail(
      `the OP ${ops} on the app's host ${host} sets a cookie named "${name}", the name of the app's session cookie: browsers do not keep ports apart, so each overwrites the other and logins fail`,
      `give the app's session cookie its own name: session({ ..., name: '${suggest(name, seen)}' })`,
    );
  }
  return pass(`cookie "${name}": the OP ${ops} shares the host ${host} but ${seen.length ? `sets other cookies (${seen.join(', ')})` : 'set no cookie during the checks, so its names could not be compared'}`);
}

function suggest(name: string, taken: string[]): string {
  for (const candidate of ['app.sid', 'rp.sid', `${name.replace(/^_+/, '') || 'app'}.app`]) if (!taken.includes(candidate)) return candidate;
  return `app-${Date.now().toString(36)}.sid`;
}
