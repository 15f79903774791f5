/**
 * A request outside {mountPath} (the app's own routes) gets rp()'s session step and `req.oidc`
 * without the Router walking its stack; paths under {mountPath}, in any letter case, are routed.
 */
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { oidc, RequestContext, rp, type RpRouter } from '@openid-express/rp';

function app(mountPath?: string) {
  const router: RpRouter = rp({
    baseURL: 'https://app.example.com', ...(mountPath ? { mountPath } : {}),
    providers: { op: oidc({ issuer: 'https://op.example.com', clientId: 'app', clientSecret: 'app-secret-that-is-long-enough' }) },
  });
  const a = express();
  a.use(session({ secret: 'test-session-secret-0123456789', resave: false, saveUninitialized: false }));
  a.use(router);
  a.get('/me', (req, res) => void res.json({ context: req.oidc instanceof RequestContext, loggedIn: req.oidc.isAuthenticated() }));
  // the Router tries to match its second layer (the routes under {mountPath}) only when it walks its stack
  const routes = (router as unknown as { stack: Array<{ match: (path: string) => boolean }> }).stack[1]!;
  const walked = jest.spyOn(routes, 'match');
  return { a, walked };
}

afterEach(() => jest.restoreAllMocks());

describe('rp(): requests outside its mount path', () => {
  test('an app route gets req.oidc (a RequestContext) without the Router walking its routes', async () => {
    const { a, walked } = app();
    const res = await request(a).get('/me?x=1');
    expect(res.body).toEqual({ context: true, loggedIn: false });
    expect(walked).not.toHaveBeenCalled();
  });

  test.each(['/auth/providers', '/AUTH/providers', '/auth/providers?x=1'])('%s is routed (Express matches the mount path in any case)', async (path) => {
    const { a, walked } = app();
    const res = await request(a).get(path);
    expect(res.status).toBe(200);
    expect(res.body).toEqual([expect.objectContaining({ name: 'op' })]);
    expect(walked).toHaveBeenCalled();
  });

  test('a path that only starts like the mount path (/authors) is the app\'s', async () => {
    const { a, walked } = app();
    a.get('/authors', (req, res) => void res.json({ context: req.oidc instanceof RequestContext }));
    const res = await request(a).get('/authors');
    expect(res.body).toEqual({ context: true });
    expect(walked).not.toHaveBeenCalled();
  });

  test('another mountPath: the same rule', async () => {
    const { a, walked } = app('/sso');
    expect((await request(a).get('/sso/providers')).status).toBe(200);
    expect(walked).toHaveBeenCalledTimes(1);
    expect((await request(a).get('/me')).body).toEqual({ context: true, loggedIn: false });
    expect(walked).toHaveBeenCalledTimes(1);
  });
});

describe('rp(): a method a route does not take', () => {
  test.each([
    ['put', '/auth/providers', 'GET, HEAD'],
    ['get', '/auth/refresh', 'POST'],
    ['delete', '/auth/logout', 'GET, HEAD, POST'],
    ['get', '/auth/backchannel-logout/op', 'POST'],
    ['patch', '/auth/callback/op', 'GET, HEAD, POST'],
  ] as const)('%s %s: 405 with Allow (%s), JSON for an API client; not the app\'s 404', async (method, path, allow) => {
    const { a } = app();
    const res = await request(a)[method](path).set('accept', 'application/json');
    expect([res.status, res.headers.allow, res.body.error]).toEqual([405, allow, 'method_not_allowed']);
  });

  test('OPTIONS answers 204 with Allow; a GET route still answers HEAD; an unknown path under the mount stays the app\'s 404', async () => {
    const { a } = app();
    const options = await request(a).options('/auth/refresh');
    expect([options.status, options.headers.allow]).toEqual([204, 'POST']);
    expect((await request(a).head('/auth/providers')).status).toBe(200);
    expect((await request(a).put('/auth/no-such-route')).status).toBe(404);
  });
});
