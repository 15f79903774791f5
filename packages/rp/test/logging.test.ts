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

  test('a visitor cannot forge log lines or send the operator\'s terminal escapes: request input in a refusal is logged on one line, capped', async () => {
    lines.length = 0;
    const forged = '2026-01-01T00:00:00.000Z openid-express:rp everything is fine';
    const iss = `https://x\r\n${forged}\u001b[2J`;
    await t.agent().get(`/auth/login/op?iss=${encodeURIComponent(iss)}&target_link_uri=${encodeURIComponent(`${t.baseURL}/`)}`).expect(400);
    await t.agent().get(`/auth/request/${'a'.repeat(15_000)}`).expect(404);
    const said = lines.join('\n');
    expect(said).toContain('invalid_request');
    expect(said.split('\n').some((line) => line.startsWith('2026-01-01'))).toBe(false);
    expect(said).not.toContain('\u001b');
    expect(Math.max(...lines.map((line) => line.length))).toBeLessThan(2_000); // the 15 KB path is cut
  });
});
