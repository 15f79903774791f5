import type request from 'supertest';
import type { SessionData } from 'express-session';
import type { TestRp } from './rp-app.js';

/** The agent has no login (an API call to /me gets 401) and the store holds no authenticated session. */
export async function expectNoLogin(t: TestRp, agent: request.Agent): Promise<void> {
  const me = await agent.get('/me');
  expect(me.status).toBe(401);
  expect(me.body.error).toBe('not_authenticated');
  expect(await t.authenticatedSessions()).toEqual([]);
}

/** The session cookie's value sent by an agent's jar (undefined when none). */
export function sessionCookie(agent: request.Agent, baseURL: string): string | undefined {
  const jar = (agent as unknown as { jar: { getCookie(name: string, access: unknown): { value: string } | undefined } }).jar;
  const url = new URL(baseURL);
  return jar.getCookie('sid', { domain: url.hostname, path: '/', secure: false, script: false })?.value;
}

export function clearStore(t: TestRp): Promise<void> {
  return new Promise((resolve) => t.store.clear(() => resolve()));
}

/** Session `id` holds nothing but pending logins, one for each of `returnTos` (what a sign-out keeps of a session: other tabs' sign-ins). */
export async function expectOnlyPendingLogins(t: TestRp, id: string, returnTos: string[]): Promise<void> {
  const kept = await new Promise<SessionData | null | undefined>((resolve) => t.store.get(id, (_e, s) => resolve(s)));
  expect(Object.keys(kept ?? {}).sort()).toEqual(['cookie', 'oidc']);
  expect(kept!.oidc).toEqual({ transactions: returnTos.map((returnTo) => expect.objectContaining({ returnTo })) });
}

/** The tab whose sign-in the login route sent to `location` signs in at the OP as `account`, and lands on `returnTo` signed in so. */
export async function expectTabSignsIn(t: TestRp, agent: request.Agent, location: string, account: string, returnTo: string): Promise<void> {
  const callback = await t.op.browser().authorize(location, { account });
  const done = await agent.get(callback.pathname + callback.search);
  expect([done.status, done.headers.location]).toEqual([302, returnTo]);
  expect((await agent.get('/me')).body.sub).toBe(account);
}

/** `name=value` of the session cookie an answer sets (not rp()'s own `oidc_…` cookies, which may come first). */
export function sessionCookieOf(res: request.Response): string {
  return ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => !c.startsWith('oidc_'))?.split(';')[0] ?? '';
}
