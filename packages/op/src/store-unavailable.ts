import debug from 'debug';
import type { Request, Response } from 'express';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { sendStoreUnavailable, unavailableAnswer } from './error-page.js';
import { isResumeInProgress, storeFailureIn } from './errors.js';
import type { Views } from './views/render.js';
import { consumedInRequest } from './request-scope.js';

const log = debug('openid-express:op');

/** True when `err` is (or wraps) a StoreUnavailableError, by its stable code (safe across module copies). */
export const isStoreUnavailable = (err: unknown): boolean => storeFailureIn(err) !== undefined;

/**
 * Turns oidc-provider's 500 `server_error` for a store failure into our 503 `store_unavailable`,
 * with nothing on the path of a request that succeeds: a route's error handler catches the
 * adapter's rejection, sets a 500 body and emits `server_error` (ctx, err) before Koa writes
 * anything; the listener takes the response over (`ctx.respond = false`) and answers the 503.
 * (Every store call of oidc-provider runs inside a route's error handler; middleware added with
 * `provider.use` after op() has built its app never runs.)
 *
 * @example
 * answerStoreFailuresWith503(provider, views);
 */
export function answerStoreFailuresWith503(provider: Provider, views: Views): void {
  provider.on('server_error', (ctx: KoaContextWithOIDC, err: Error) => {
    // a resume whose claim another request still holds (request-scope.ts): it consumed nothing
    if (isResumeInProgress(err)) return answerStoreUnavailable(ctx, views, err);
    if (!isStoreUnavailable(err)) return;
    undoConsumes();
    undoDeviceConfirmation(ctx);
    answerStoreUnavailable(ctx, views, err);
  });
}

/**
 * Answers the oidc-provider request `ctx` with our 503 `store_unavailable` instead of what it set
 * (taking the response over: `ctx.respond = false`); worded for a lasting refusal when `err` is one,
 * and as `resume_in_progress` for a ResumeInProgressError.
 */
export function answerStoreUnavailable(ctx: KoaContextWithOIDC, views: Views, err?: unknown): void {
  log('store unavailable at %s %s: 503', ctx.method, ctx.path);
  ctx.respond = false;
  // its cookies do not go: the retry must come as this request came (the resume cookie it cleared,
  // an OP session id it had not saved yet)
  ctx.res.removeHeader('set-cookie');
  ctx.res.statusMessage = 'Service Unavailable'; // Koa named the status it had set
  // the request and response Express handed to provider.callback(); JSON unless HTML is
  // preferred, as oidc-provider's own error answers (a bare */* gets JSON)
  const wantsJson = ctx.accepts('json', 'html') !== 'html';
  void sendStoreUnavailable(ctx.req as unknown as Request, ctx.res as unknown as Response, views, err, wantsJson).catch((failed: unknown) => {
    log('the 503 answer failed: %s', (failed as Error)?.message);
    if (!ctx.res.headersSent) ctx.res.writeHead(503, { 'Retry-After': String(unavailableAnswer(err).retryAfter) });
    ctx.res.end();
  });
}

/**
 * Gives back what the failing request consumed (a code, a device code, a rotated refresh token):
 * its tokens never reached the client, and the 503 says "try again", which must not meet
 * "already used" (oidc-provider would even revoke the grant). Sent once, at once: a stalled Redis
 * runs it in order right after the request's own writes (node-redis keeps the command), and never
 * later than a retry that could spend the code again.
 */
export function undoConsumes(scope = consumedInRequest.getStore()): void {
  for (const step of scope?.undo.splice(0) ?? []) {
    step().then(() => log('a consume of the failed request was given back'), (err: unknown) => log('a consume of the failed request was not given back: %s', (err as Error)?.message));
  }
}

/**
 * A device code confirmed ("Is this your device?" → Continue) is marked in flight before its sign-in
 * starts, and a failure after that makes oidc-provider save `server_error` on it: the store failing
 * there made the code "already used" when entered again, and the device was told to start again (or,
 * its error save stalled too, polled `authorization_pending` until the code expired). Both marks
 * are taken back (one blind save, run in order after the request's own writes on a stalled Redis).
 */
function undoDeviceConfirmation(ctx: KoaContextWithOIDC): void {
  type Marked = InstanceType<Provider['DeviceCode']> & { inFlight?: boolean; error?: string; errorDescription?: string };
  const code = ctx.oidc?.entities?.DeviceCode as Marked | undefined;
  if (ctx.oidc?.route !== 'code_verification' || !code?.inFlight || code.accountId || (code.error && code.error !== 'server_error')) return;
  Object.assign(code, { inFlight: undefined, error: undefined, errorDescription: undefined });
  code.save().then(() => log('the device code\'s confirmation was given back'), (err: unknown) => log('the device code\'s confirmation was not given back: %s', (err as Error)?.message));
}
