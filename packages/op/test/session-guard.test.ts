/**
 * guardSession bounds the session store's calls; a call answered lets go of its callback even when
 * the store keeps it (as a store's own queue may), so the request it holds can be collected.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { guardSession } from '../src/session-guard.js';

type Cb = (err?: unknown, value?: unknown) => void;

test('a store that keeps the callback after answering does not keep the request alive', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const kept: Cb[] = [];
  const store = { get: (_sid: string, cb: Cb) => void kept.push(cb) };
  const session: RequestHandler = (req, _res, next) => {
    (req as unknown as { sessionStore: unknown; session: unknown }).sessionStore = store;
    (req as unknown as { session: unknown }).session = {};
    next();
  };
  const unavailable = jest.fn();
  const nextCalled = jest.fn();
  guardSession(session, 1000, unavailable)({} as Request, {} as Response, nextCalled as NextFunction);
  expect(nextCalled).toHaveBeenCalledTimes(1);

  let request: WeakRef<object> | undefined;
  const answered = await new Promise<unknown>((resolve) => {
    const req = { body: new Array(1000).fill('request data') };
    request = new WeakRef(req);
    store.get('sid', (err, value) => resolve(req.body.length && (err ?? value))); // wrapped by guardSession
    kept[0]!(null, { cookie: {} });
  });
  expect(answered).toEqual({ cookie: {} });
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  expect(kept).toHaveLength(1); // the store still holds the wrapped callback...
  expect(request!.deref()).toBeUndefined(); // ...but not what the caller's callback held
  expect(unavailable).not.toHaveBeenCalled();
});

test('a stalled store call answers with StoreUnavailableError once, and a late answer is ignored', async () => {
  const kept: Cb[] = [];
  const store = { get: (_sid: string, cb: Cb) => void kept.push(cb) };
  const session: RequestHandler = (req, _res, next) => {
    Object.assign(req, { sessionStore: store, session: {} });
    next();
  };
  guardSession(session, 30, jest.fn())({} as Request, {} as Response, jest.fn() as NextFunction);
  const answers: unknown[] = [];
  await new Promise<void>((resolve) => store.get('sid', (err) => (answers.push(err), resolve())));
  kept[0]!(null, { late: true });
  expect(answers).toHaveLength(1);
  expect(answers[0]).toMatchObject({ name: 'StoreUnavailableError' });
  expect(String((answers[0] as Error).message)).toMatch(/session store's get did not answer within 30 ms/);
});
