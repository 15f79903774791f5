import { format } from 'node:util';
import createDebug from 'debug';
import { startRp, type TestRp, CLIENT_SECRET } from './support/rp-app.js';

let t: TestRp;
const lines: string[] = [];
beforeAll(async () => {
  createDebug.enable('openid-express:*');
  createDebug.log = (...args: unknown[]) => void lines.push(format(...args));
  t = await startRp();
});
afterAll(async () => {
  createDebug.disable();
  await t.close();
});

async function storedAuth(): Promise<Record<string, unknown>> {
  const [id] = await t.authenticatedSessions();
  return new Promise((resolve) => t.store.get(id, (_e, s) => resolve(s!.oidc!.auth as never)));
}

describe('debug logging (openid-express:rp)', () => {
  test('tells the story of a login, refresh, refusal and logout without any secret', async () => {
    const agent = t.agent();
    const callback = await t.startLogin(agent);
    await agent.get(callback.pathname + callback.search).expect(302);
    const auth = (await storedAuth()) as { idToken: string; refreshToken: string; accessToken: { value: string } };
    await agent.post('/auth/refresh').expect(200);
    const refreshed = (await storedAuth()) as { refreshToken: string; accessToken: { value: string } };
    await t.agent().get(callback.pathname + callback.search).expect(400); // replayed from another browser
    await agent.get('/auth/logout').set('sec-fetch-site', 'same-origin').expect(302);

    const log = lines.join('\n');
    expect(log).toContain('login started at provider op');
    expect(log).toContain('login finished at provider op');
    expect(log).toContain('tokens refreshed at provider op');
    expect(log).toContain('invalid_state');
    expect(log).toContain('logout: local session ended');
    for (const secret of [
      callback.searchParams.get('code')!, callback.searchParams.get('state')!, CLIENT_SECRET,
      auth.idToken, auth.refreshToken, auth.accessToken.value, refreshed.refreshToken, refreshed.accessToken.value,
    ]) {
      expect(log).not.toContain(secret);
    }
  });
});
