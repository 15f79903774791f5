import debug from 'debug';
import type { Request } from 'express';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { PAGE_HEADERS, STORE_UNAVAILABLE } from './error-page.js';
import { renderPage, defaultsOf, type Views } from './views/render.js';

const log = debug('openid-express:op');

/** True when `err` is (or wraps) a StoreUnavailableError, by its stable code (safe across module copies). */
export function isStoreUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === 'store_unavailable') return true;
  }
  return false;
}

const MARK = Symbol('openid-express:store_unavailable');

async function answer(ctx: KoaContextWithOIDC, views: Views): Promise<void> {
  const { status, code, message, retryAfter } = STORE_UNAVAILABLE;
  ctx.status = status;
  ctx.set({ 'Retry-After': String(retryAfter), 'Cache-Control': 'no-store' });
  if (ctx.accepts('json', 'html') !== 'html') {
    ctx.body = { error: code, error_description: message };
    return;
  }
  const req = ctx.req as unknown as Request;
  const props = { title: 'Please try again in a moment', status, code, message };
  ctx.set(PAGE_HEADERS);
  ctx.type = 'html';
  ctx.body = await renderPage(req, views, 'error', props).catch(() => renderPage(req, defaultsOf(views), 'error', props));
}

/**
 * Turns oidc-provider's 500 `server_error` for a store failure into our 503 `store_unavailable`.
 * oidc-provider's per-route error handler catches the adapter's rejection, renders a 500 and emits
 * `server_error` (ctx, err); the listener marks ctx and a `provider.use` middleware, which runs
 * around every route, rewrites the answer once the route is done.
 *
 * @example
 * answerStoreFailuresWith503(provider, views);
 */
export function answerStoreFailuresWith503(provider: Provider, views: Views): void {
  provider.on('server_error', (ctx: KoaContextWithOIDC, err: Error) => {
    if (isStoreUnavailable(err)) (ctx.state as Record<symbol, boolean>)[MARK] = true;
  });
  provider.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!isStoreUnavailable(err)) throw err; // thrown outside a route's error handler
      (ctx.state as Record<symbol, boolean>)[MARK] = true;
    }
    if (!(ctx.state as Record<symbol, boolean>)[MARK]) return;
    log('store unavailable at %s %s: 503', ctx.method, ctx.path);
    await answer(ctx as KoaContextWithOIDC, views);
  });
}
