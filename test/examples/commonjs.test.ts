/**
 * examples/commonjs, run as `node app.cjs`: require() of the built ESM packages works (Node >=
 * 20.19), and the app it builds serves its OP and signs in with it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FormBrowser, signIn } from '../support/op-forms.js';
import { repoRoot, runScript, type RunningScript } from './run-script.js';

jest.setTimeout(90_000); // a cold start of node + both packages can be slow on a busy CI machine

let script: RunningScript;
let baseURL: string;

beforeAll(async () => {
  for (const pkg of ['rp', 'op']) {
    if (!existsSync(join(repoRoot, 'packages', pkg, 'dist', 'index.js'))) {
      throw new Error(`packages/${pkg} is not built: run \`npm run build\` (npm test does it) first`);
    }
  }
  const started = await runScript('examples/commonjs/app.cjs', { PORT: '0' }, /open (http:\/\/localhost:\d+)/);
  script = started.script;
  baseURL = started.match[1];
});

afterAll(() => script?.stop());

test('the home page answers', async () => {
  const res = await fetch(baseURL);
  expect(res.status).toBe(200);
  expect(await res.text()).toContain('CommonJS example');
});

test('the OP it mounts publishes its discovery document', async () => {
  const res = await fetch(`${baseURL}/op/.well-known/openid-configuration`);
  expect(res.status).toBe(200);
  expect((await res.json()).issuer).toBe(`${baseURL}/op`);
});

test('signing in starts at its own OP', async () => {
  const res = await fetch(`${baseURL}/auth/login/local?returnTo=/me`, { redirect: 'manual' });
  expect(res.status).toBe(302);
  expect(res.headers.get('location')).toMatch(new RegExp(`^${baseURL}/op/auth\\?`));
});

test('an anonymous API call is refused with 401 JSON', async () => {
  const res = await fetch(`${baseURL}/me`, { headers: { accept: 'application/json' } });
  expect(res.status).toBe(401);
  expect(script.output()).not.toMatch(/ERR_REQUIRE/);
});

test('a user signs in at the OP it mounts and gets their user as JSON', async () => {
  const browser = new FormBrowser();
  const page = await signIn(browser, `${baseURL}/auth/login/local?returnTo=/me`, { login: 'carol', password: 'commonjs' });
  expect(page.url).toBe(`${baseURL}/me`);
  expect(page.status).toBe(200);
  expect(JSON.parse(page.html)).toMatchObject({ sub: 'carol', name: 'Carol CommonJS', provider: 'local' });
});
