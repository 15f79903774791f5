import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultViews, type LoginViewProps } from '@openid-express/op';
import { FormBrowser } from '../../../test/support/op-forms.js';
import { client, startFlowFixture, type FlowFixture } from './support/flow-suite.js';
import { accounts, startOp, type RunningOp } from './support/op-server.js';
import { memoryAdapter } from '@openid-express/op';

const loginProps: LoginViewProps = {
  title: 'Sign in', clientName: '<img src=x onerror=alert(1)>', clientUri: 'javascript:alert(1)',
  action: '/op/interaction/u/login', abortAction: '/op/interaction/u/abort', csrf: '"><script>x</script>',
  error: '<b>bad</b>', authenticators: [{ id: 'password', label: 'Password', fields: '<input name="login">', submitLabel: 'Go' }],
};

describe('the default views', () => {
  test('escape everything they are given and drop javascript: links', () => {
    const html = (defaultViews.login as (p: LoginViewProps) => string)(loginProps);
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('javascript:');
    expect(html).toContain('&lt;b&gt;bad&lt;/b&gt;');
  });

  test('the sign-out question reads right with and without the name of the app', () => {
    const logout = defaultViews.logout as (p: { title: string; clientName?: string; form: string }) => string;
    expect(logout({ title: 'Sign out', form: '' })).toContain('<p>Do you want to sign out from this identity provider?</p>');
    expect(logout({ title: 'Sign out', clientName: 'Shop & Co', form: '' })).toContain('<p>Do you want to sign out from <bdi>Shop &amp; Co</bdi> and from this identity provider?</p>');
  });

  test('a name of someone else\'s is isolated (<bdi>): one ending in a right-to-left override cannot turn the page\'s own words backwards', () => {
    const spoof = 'Photo Print\u202E';
    const pages = [
      (defaultViews.consent as (p: object) => string)({ title: 'Allow access?', clientName: spoof, account: spoof, scopes: [], claims: [], action: '/c', abortAction: '/a', csrf: 'x' }),
      (defaultViews.login as (p: LoginViewProps) => string)({ ...loginProps, clientName: spoof }),
      (defaultViews.logout as (p: object) => string)({ title: 'Sign out', clientName: spoof, form: '' }),
      (defaultViews.error as (p: object) => string)({ title: 'Error', status: 400, code: 'x', message: 'm', clientName: spoof }),
      (defaultViews.deviceConfirm as (p: object) => string)({ title: 'Confirm', clientName: spoof, userCode: 'ABCD-EFGH', action: '/d', csrf: 'x' }),
    ];
    for (const html of pages) {
      const at = html.indexOf('Photo Print');
      expect(at).toBeGreaterThan(-1);
      expect(html.slice(0, at)).toMatch(/<bdi>$/);
      expect(html.slice(at)).toMatch(/^Photo Print\u202E<\/bdi>/);
    }
  });

  test('are a self-contained page without scripts, readable on a phone', async () => {
    const f = await startFlowFixture(memoryAdapter());
    try {
      const auth = await f.authorization();
      const page = await f.browser().open(auth.url);
      expect(page.html).toMatch(/^<!DOCTYPE html>/);
      expect(page.html).toContain('<html lang="en">');
      expect(page.html).toContain('name="viewport"');
      expect(page.html).not.toMatch(/<script|<link|@import/);
      // every visible input has a label pointing at it
      for (const [, id] of page.html.matchAll(/<input id="([^"]+)"/g)) expect(page.html).toContain(`<label for="${id}">`);
      expect(page.headers.get('cache-control')).toBe('no-store');
      expect(page.headers.get('x-frame-options')).toBe('DENY');
    } finally {
      await f.op.close();
    }
  });
});

describe('apps override views', () => {
  let op: RunningOp;
  let viewsDir: string;
  beforeAll(async () => {
    viewsDir = mkdtempSync(join(tmpdir(), 'op-views-'));
    writeFileSync(join(viewsDir, 'oops.tpl'), '<!DOCTYPE html><html><body><h1>Custom error {{code}}</h1><p>{{message}}</p></body></html>');
    op = await startOp((_issuer, origin) => ({
      adapter: memoryAdapter(), accounts,
      clients: [{ client_id: 'web', client_secret: 'web-secret-web-secret', redirect_uris: [`${origin}/cb`] }],
      views: {
        login: (p) => `<h1>Welcome to ${p.clientName}</h1><form method="post" action="${p.action}"><input type="hidden" name="csrf" value="${p.csrf}"></form>`,
        error: 'oops',
      },
    }), {
      beforeOp: (app) => {
        app.set('views', viewsDir);
        app.set('view engine', 'tpl');
        app.engine('tpl', (path: string, locals: object, cb: (e: unknown, html?: string) => void) => {
          const vars = locals as Record<string, string>;
          cb(null, readFileSync(path, 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k: string) => String(vars[k] ?? '').replace(/[<>&"]/g, '')));
        });
      },
    });
  });
  afterAll(() => op.close());

  const authUrl = async (redirectUri: string) => {
    const config = await client.discovery(new URL(op.issuer), 'web', 'web-secret-web-secret', undefined, { execute: [client.allowInsecureRequests] });
    return client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    }).href;
  };

  test('with a function: its HTML is wrapped in the layout', async () => {
    const page = await new FormBrowser().open(await authUrl(`${op.origin}/cb`));
    expect(page.status).toBe(200);
    expect(page.html).toContain('<h1>Welcome to web</h1>');
    expect(page.html).toMatch(/^<!DOCTYPE html>/);
  });

  test("with a view name: the app's engine renders it, also for oidc-provider's own error pages", async () => {
    const page = await new FormBrowser().open(await authUrl('https://evil.example/cb'));
    expect(page.status).toBe(400);
    expect(page.html).toContain('<h1>Custom error invalid_redirect_uri</h1>');
    const csrf = await new FormBrowser().post(`${op.issuer}/interaction/nope/login`, { csrf: 'x' });
    expect(csrf.status).toBe(400);
    expect(csrf.html).toContain('Custom error interaction_expired');
  });
});

describe('a view that throws', () => {
  let f: FlowFixture;
  afterAll(() => f.op.close());
  test('gives a 500 page without a stack trace, and stderr names the view, with the stack', async () => {
    const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    f = await startFlowFixture(memoryAdapter(), { views: { login: () => { throw new Error('secret-detail at /srv/app.js:1'); } } });
    const page = await f.browser().open((await f.authorization()).url);
    expect(page.status).toBe(500);
    expect(page.html).toContain('server_error');
    expect(page.html).not.toContain('secret-detail');
    const [[said, err]] = errors.mock.calls as [[string, Error]];
    expect(said).toMatch(/^op\(\): GET \/op\/interaction\/[\w-]+ failed \(500 server_error\):$/);
    expect(err.message).toBe('views.login failed: secret-detail at /srv/app.js:1'); // before: only "interaction error: secret-detail…", with DEBUG
    expect((err.cause as Error).stack).toContain('views.test.ts');
    errors.mockRestore();
  });
});

describe('a view that returns no string (a function with braces and no return)', () => {
  test.each([
    ['undefined', () => undefined],
    ['an object', () => ({ html: '<p>hi</p>' })],
  ])('%s: a 500 page, not a page reading "undefined" or "[object Object]", and the log says why', async (_what, login) => {
    const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const f = await startFlowFixture(memoryAdapter(), { views: { login: login as never } });
    try {
      const page = await f.browser().open((await f.authorization()).url);
      expect(page.status).toBe(500); // before: 200 "undefined"
      expect(page.html).not.toMatch(/undefined|object Object/);
      expect(String((errors.mock.calls[0]?.[1] as Error)?.message)).toMatch(/^views\.login returned (undefined|object), not a string of HTML/);
    } finally {
      errors.mockRestore();
      await f.op.close();
    }
  });
});

describe('a view whose HTML is a String object (html`…` of some template libraries)', () => {
  test('is rendered as HTML, not refused', async () => {
    const f = await startFlowFixture(memoryAdapter(), {
      // eslint-disable-next-line no-new-wrappers
      views: { login: (p) => new String(`<h1>Sign in, from a template library</h1><form method="post" action="${p.action}"></form>`) as unknown as string },
    });
    try {
      const page = await f.browser().open((await f.authorization()).url);
      expect([page.status, page.html.includes('<h1>Sign in, from a template library</h1>')]).toEqual([200, true]);
    } finally {
      await f.op.close();
    }
  });
});

describe('a custom login view without the CSRF field', () => {
  test('its POST gets the 403 page, and the log (DEBUG) says the field is missing and what to add', async () => {
    const { default: debug } = await import('debug');
    const { format } = await import('node:util');
    const f = await startFlowFixture(memoryAdapter(), {
      views: { login: (p) => `<form method="post" action="${p.action}"><input type="hidden" name="authenticator" value="password"><input name="login"><input name="password"></form>` },
    });
    const lines: string[] = [];
    const log = debug.log;
    debug.enable('openid-express:op');
    debug.log = (...args: unknown[]) => void lines.push(format(...args));
    try {
      const browser = f.browser();
      const login = await browser.open((await f.authorization()).url);
      const page = await browser.submit(login, { action: '/login' }, { login: 'alice', password: 'x' });
      expect(page.status).toBe(403);
      expect(lines).toContainEqual(expect.stringContaining('had no "csrf" field: a custom view must include <input type="hidden" name="csrf" value="${props.csrf}">'));
    } finally {
      debug.log = log;
      debug.disable();
      await f.op.close();
    }
  });
});
