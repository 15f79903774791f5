import type request from 'supertest';
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
