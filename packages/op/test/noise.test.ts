/**
 * Warnings a user did not cause: oidc-provider's "Unsupported runtime" on the Node.js versions this
 * package supports, its "already parsed request body detected" when the logout is confirmed, and
 * its notice that the default `clientBasedCORS` should be changed (op() sets that rule itself), and
 * its "you MUST change it" about `getResourceServerInfo` when any visitor sends `resource=` to an OP
 * without resource indicators.
 */
import express from 'express';
import { memoryAdapter } from '@openid-express/op';
import { signIn } from '../../../test/support/op-forms.js';
import { supportedNode, withoutRuntimeWarning } from '../src/runtime-warning.js';
import { ALICE, accounts, startOp } from './support/op-server.js';
import { signInThenOutChecked, startFlowFixture, type FlowFixture } from './support/flow-suite.js';
import { codeRequest } from './cert-support.js';

const UNSUPPORTED = 'oidc-provider WARNING: Unsupported runtime. Use Node.js v22.x LTS, or a later LTS release.';

describe('"Unsupported runtime"', () => {
  test('is not printed when the package loads on a supported Node.js, and console.warn is put back', () => {
    const release = process.release;
    // oidc-provider warns for any LTS line before "Jod" (22): make it see Node 20's, whatever runs the test
    Object.defineProperty(process, 'release', { value: { ...release, lts: 'Iron' }, configurable: true });
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      jest.isolateModules(() => {
        jest.requireActual('@openid-express/op');
      });
      expect(supportedNode(process.versions.node)).toBe(true);
      expect(warn.mock.calls.flat().join('\n')).not.toContain('Unsupported runtime');
      expect(console.warn).toBe(warn);
    } finally {
      warn.mockRestore();
      Object.defineProperty(process, 'release', { value: release, configurable: true });
    }
  });

  test('only that one warning is dropped, only on Node.js >= 20.19', () => {
    const seen: unknown[][] = [];
    const warn = (...args: unknown[]) => void seen.push(args);
    const on20 = withoutRuntimeWarning(warn, '20.19.0');
    on20(UNSUPPORTED);
    on20(`\x1b[31;1m${UNSUPPORTED}\x1b[0m`); // as printed to a terminal
    on20('oidc-provider WARNING: already parsed request body detected');
    on20(UNSUPPORTED, 'and more');
    on20('my own warning');
    expect(seen).toEqual([['oidc-provider WARNING: already parsed request body detected'], [UNSUPPORTED, 'and more'], ['my own warning']]);
    expect(withoutRuntimeWarning(warn, '20.18.3')).toBe(warn);
    expect(withoutRuntimeWarning(warn, '18.20.0')).toBe(warn);
    expect([supportedNode('20.19.0'), supportedNode('22.0.0'), supportedNode('24.1.0'), supportedNode('20.18.9'), supportedNode(undefined)])
      .toEqual([true, true, true, false, false]);
  });
});

describe('"already parsed request body detected"', () => {
  const parsedBodyWarnings = (warn: jest.SpyInstance) => warn.mock.calls.flat().filter((m) => String(m).includes('already parsed request body'));

  async function loginAndLogout(f: FlowFixture): Promise<number> {
    const browser = f.browser();
    const cb = await signIn(browser, (await f.authorization()).url, { login: 'alice', password: ALICE.password });
    expect(cb.stoppedAt).toContain('/cb?code=');
    const confirm = await browser.open(`${f.op.issuer}/session/end`);
    // the CSRF check (which reads the body before oidc-provider does) refuses a post without the page's token
    const forged = await browser.post(`${f.op.issuer}/session/end/confirm`, { logout: 'yes', csrf: 'guessed' });
    const done = await browser.submit(confirm, { id: 'op.logoutForm' }, { logout: 'yes' });
    expect(done.html).toContain('<h1>Signed out</h1>');
    // signed out for real: the next authorization asks for the password again
    expect((await browser.open((await f.authorization()).url)).html).toContain('name="password"');
    return forged.status;
  }

  test('is not printed during a full login and logout: op() leaves the body of the logout confirmation to oidc-provider', async () => {
    const warn = jest.spyOn(console, 'warn');
    const f = await startFlowFixture(memoryAdapter());
    try {
      expect(await loginAndLogout(f)).toBe(403);
      expect(parsedBodyWarnings(warn)).toEqual([]);
    } finally {
      warn.mockRestore();
      await f.op.close();
    }
  });

  test('a chunked confirmation (no Content-Length) is read like any other; an oversized one is a 413 page', async () => {
    const warn = jest.spyOn(console, 'warn');
    const f = await startFlowFixture(memoryAdapter());
    try {
      const browser = f.browser();
      await signIn(browser, (await f.authorization()).url, { login: 'alice', password: ALICE.password });
      const confirm = await browser.open(`${f.op.issuer}/session/end`);
      const form = browser.form(confirm, { id: 'op.logoutForm' });
      const post = (parts: string[]) => fetch(form.action, {
        method: 'POST', redirect: 'manual', duplex: 'half',
        headers: { cookie: browser.jar.header(form.action), 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
        body: new ReadableStream({ start(c) { for (const p of parts) c.enqueue(new TextEncoder().encode(p)); c.close(); } }),
      } as RequestInit);
      const huge = await post([new URLSearchParams(form.fields).toString(), `&pad=${'x'.repeat(20_000)}`]);
      expect(huge.status).toBe(413);
      const body = new URLSearchParams({ ...form.fields, logout: 'yes' }).toString();
      const done = await post([body.slice(0, 10), body.slice(10)]);
      expect([done.status, done.headers.get('location')]).toEqual([303, expect.stringContaining('/session/end/success')]);
      expect(parsedBodyWarnings(warn)).toEqual([]);
    } finally {
      warn.mockRestore();
      await f.op.close();
    }
  });

  test("an app that parses bodies itself before op() can still sign out, and forged posts are still refused", async () => {
    const f = await startFlowFixture(memoryAdapter(), {}, { beforeOp: (app) => app.use(express.urlencoded({ extended: true })) });
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined); // the app's parser: oidc-provider says so once
    try {
      await signInThenOutChecked(f);
    } finally {
      warn.mockRestore();
      await f.op.close();
    }
  });
});

describe('"default clientBasedCORS function called"', () => {
  test("is not printed when a browser app calls the token endpoint across origins: op() sets the rule, and it holds", async () => {
    const spa = 'http://localhost:5173';
    const running = await startOp(() => ({
      accounts, clients: [{ client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: [`${spa}/callback`] }],
    }));
    const info = jest.spyOn(console, 'info');
    try {
      const corsOf = async (origin: string) => {
        const res = await fetch(`${running.issuer}/token`, {
          method: 'POST',
          headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=authorization_code&code=nope&client_id=spa&code_verifier=nope&redirect_uri=nope',
        });
        await res.arrayBuffer();
        return [res.status, res.headers.get('access-control-allow-origin')];
      };
      expect(await corsOf(spa)).toEqual([400, spa]);
      expect(await corsOf('https://elsewhere.example')).toEqual([400, null]);
      expect(info.mock.calls.flat().join('\n')).not.toContain('clientBasedCORS');
    } finally {
      info.mockRestore();
      await running.close();
    }
  });
});

describe('"default features.resourceIndicators.getResourceServerInfo function called"', () => {
  test('is not printed when a visitor sends resource= to an OP without resource indicators; the resource is refused (invalid_target) as before', async () => {
    const f = await startFlowFixture(memoryAdapter());
    const warn = jest.spyOn(console, 'warn');
    try {
      const { url } = await codeRequest(f, { resource: 'https://api.example/' });
      const page = await f.browser().open(url);
      expect(new URL(page.stoppedAt!).searchParams.get('error')).toBe('invalid_target');
      expect(warn.mock.calls.flat().join('\n')).not.toContain('getResourceServerInfo');
    } finally {
      warn.mockRestore();
      await f.op.close();
    }
  });
});

