/**
 * `req.oidc` is built the first time a request reads it: rp() leaves a maker in `res.locals`, and
 * `req.oidc` is a getter on Express's request prototype. What an app sees stays as before: one
 * context per request, in sub-apps too, assignable, and absent where rp() did not run.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { oidc, RequestContext, requireAuth, rp } from '@openid-express/rp';

const CONTEXT = Symbol.for('@openid-express/rp request context');
const options = {
  baseURL: 'https://app.example.com',
  providers: { op: oidc({ issuer: 'https://op.example.com', clientId: 'app', clientSecret: 'app-secret-that-is-long-enough' }) },
};

function appWithRp(): express.Express {
  const app = express();
  app.use(session({ secret: 'test-session-secret-0123456789', resave: false, saveUninitialized: false }));
  app.use(rp(options));
  return app;
}

describe('req.oidc, built on first use', () => {
  test('a route that never reads req.oidc leaves no context built and no property on req', async () => {
    const app = appWithRp();
    app.get('/plain', (req, res) => {
      const kept = (res.locals as Record<symbol, unknown>)[CONTEXT];
      res.json({ own: Object.hasOwn(req, 'oidc'), kept: typeof kept, built: kept instanceof RequestContext });
    });
    expect((await request(app).get('/plain')).body).toEqual({ own: false, kept: 'function', built: false });
  });

  test('the first read builds one RequestContext, and every later read of the request gets the same one', async () => {
    const app = appWithRp();
    app.get('/twice', (req, res) => {
      const first = req.oidc;
      res.json({ context: first instanceof RequestContext, same: first === req.oidc, own: Object.hasOwn(req, 'oidc'), loggedIn: first.isAuthenticated() });
    });
    expect((await request(app).get('/twice')).body).toEqual({ context: true, same: true, own: false, loggedIn: false });
  });

  test('each request gets its own context', async () => {
    const app = appWithRp();
    const seen: unknown[] = [];
    app.get('/ctx', (req, res) => {
      seen.push(req.oidc);
      res.end();
    });
    await request(app).get('/ctx');
    await request(app).get('/ctx');
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBeInstanceOf(RequestContext);
    expect(seen[0]).not.toBe(seen[1]);
  });

  test('routes of a sub-app mounted after rp() get it, and so do the parent\'s routes after a sub-app that mounts rp()', async () => {
    const app = appWithRp();
    const sub = express();
    sub.get('/me', requireAuth(), (_req, res) => void res.end());
    sub.get('/has', (req, res) => void res.json({ context: req.oidc instanceof RequestContext }));
    app.use('/sub', sub);
    expect((await request(app).get('/sub/has')).body).toEqual({ context: true });
    expect((await request(app).get('/sub/me')).status).toBe(401); // the guard ran: no login

    const parent = express();
    const inner = express();
    inner.use(session({ secret: 'test-session-secret-0123456789', resave: false, saveUninitialized: false }));
    inner.use(rp(options));
    inner.use((_req, _res, next) => next());
    parent.use(inner);
    parent.get('/after', (req, res) => void res.json({ context: req.oidc instanceof RequestContext }));
    expect((await request(parent).get('/after')).body).toEqual({ context: true });
  });

  test('where rp() did not run, req.oidc is undefined (a route before it, another app)', async () => {
    const app = express();
    app.use(session({ secret: 'test-session-secret-0123456789', resave: false, saveUninitialized: false }));
    app.get('/before', (req, res) => void res.json({ defined: req.oidc !== undefined }));
    app.use(rp(options));
    app.get('/after', (req, res) => void res.json({ defined: req.oidc !== undefined }));
    const other = express();
    other.get('/x', (req, res) => void res.json({ defined: req.oidc !== undefined }));
    expect((await request(app).get('/before')).body).toEqual({ defined: false });
    expect((await request(app).get('/after')).body).toEqual({ defined: true });
    expect((await request(other).get('/x')).body).toEqual({ defined: false });
  });

  test('req.oidc can be assigned (a test\'s stand-in, another library): that request keeps what was set', async () => {
    const app = appWithRp();
    app.get('/assigned', (req, res) => {
      const standIn = { isAuthenticated: () => true } as unknown as typeof req.oidc;
      req.oidc = standIn;
      res.json({ same: req.oidc === standIn, again: req.oidc === standIn });
    });
    app.get('/next', (req, res) => void res.json({ context: req.oidc instanceof RequestContext }));
    expect((await request(app).get('/assigned')).body).toEqual({ same: true, again: true });
    expect((await request(app).get('/next')).body).toEqual({ context: true });
  });

  test.each([
    ['an Express whose requests already reached rp()', () => express],
    ['a fresh copy of Express, on its very first request', () => {
      let fresh: typeof express | undefined;
      jest.isolateModules(() => { fresh = require('express') as typeof express; }); // eslint-disable-line @typescript-eslint/no-require-imports
      return fresh!;
    }],
  ])('a req.oidc set before rp() runs (another library\'s) is replaced by rp()\'s, as before: %s', async (_label, expressCopy) => {
    const app = expressCopy()();
    app.use(session({ secret: 'test-session-secret-0123456789', resave: false, saveUninitialized: false }));
    app.use((req, _res, next) => {
      req.oidc = { other: true } as unknown as typeof req.oidc;
      next();
    });
    app.use(rp(options));
    app.get('/x', (req, res) => void res.json({ context: req.oidc instanceof RequestContext }));
    expect((await request(app).get('/x')).body).toEqual({ context: true });
  });

  test('an Express whose request prototype is frozen: req.oidc is set on each request instead', async () => {
    const app = appWithRp();
    app.get('/x', (req, res) => void res.json({ context: req.oidc instanceof RequestContext, own: Object.hasOwn(req, 'oidc') }));
    // a copy of the chain with a frozen base, as a hardened app might have it
    const frozen = Object.freeze(Object.create(http.IncomingMessage.prototype));
    const appProto = Object.create(frozen, Object.getOwnPropertyDescriptors(app.request));
    Object.defineProperty(app, 'request', { value: appProto });
    expect((await request(app).get('/x')).body).toEqual({ context: true, own: true });
  });

  test('rp() used as a plain router, without an Express app (no res.locals), sets req.oidc at once', async () => {
    const router = rp(options);
    const mw = session({ secret: 'test-session-secret-0123456789', resave: false, saveUninitialized: false });
    const server = http.createServer((req, res) => {
      mw(req as express.Request, res as express.Response, () => router(req as express.Request, res as express.Response, () => {
        const ctx = (req as express.Request).oidc;
        res.end(JSON.stringify({ context: ctx instanceof RequestContext, own: Object.hasOwn(req, 'oidc') }));
      }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const answer = await (await fetch(`http://127.0.0.1:${port}/x`)).json();
      expect(answer).toEqual({ context: true, own: true });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a middleware that replaces res.locals loses req.oidc, and requireAuth() says so', async () => {
    const app = appWithRp();
    app.use((_req, res, next) => {
      res.locals = { title: 'x' };
      next();
    });
    app.get('/guarded', requireAuth(), (_req, res) => void res.end());
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => void res.status(500).send(err.message));
    const res = await request(app).get('/guarded');
    expect(res.status).toBe(500);
    expect(res.text).toContain('replaced res.locals');
  });
});
