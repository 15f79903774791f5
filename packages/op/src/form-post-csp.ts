import { createHash } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

const SCRIPT = /<script>([\s\S]*?)<\/script>/;

/** oidc-provider's auto-posting page (its `formPost` helper) says so in its title. */
const AUTO_POST = '<title>Submitting Callback</title>';

/**
 * oidc-provider's auto-posting pages get headers of their own: the `response_mode=form_post` answer
 * (and JARM's `form_post.jwt`: an inline script that posts the answer to the client's `redirect_uri`),
 * the logout of a browser with no OP session (it posts itself to the logout confirmation, which sends
 * the browser on to the client) and the device flow's `?user_code=` link. Each gets a
 * Content-Security-Policy for just that script and no `form-action` (browsers apply it to the redirects
 * that follow the post too, and the post leads to another origin), `X-Frame-Options: DENY` and
 * `no-store` (the pages hold a code or a CSRF token). An app-wide `helmet()` before op() otherwise left
 * its own policy on them, whose `form-action 'self'` stopped the post: the user saw a blank
 * "Submitting Callback" page. The page also gets `lang`, a viewport, and a heading inside a main
 * landmark (phones, screen readers: axe-core found none, test/a11y.test.ts).
 *
 * @example
 * formPostPolicy(provider);
 */
export function formPostPolicy(provider: Provider): void {
  provider.use(async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    await next();
    if (typeof ctx.body !== 'string' || !ctx.body.includes(AUTO_POST) || !ctx.response.is('html')) return;
    const script = SCRIPT.exec(ctx.body)?.[1];
    if (script === undefined) return;
    const hash = createHash('sha256').update(script).digest('base64');
    ctx.body = ctx.body.replace('<html>', '<html lang="en">')
      .replace('<head>', '<head>\n  <meta name="viewport" content="width=device-width, initial-scale=1">')
      .replace('<body>', '<body>\n<main>\n  <h1>Continuing…</h1>').replace('</body>', '</main>\n</body>');
    ctx.set('content-security-policy', `default-src 'none'; script-src 'sha256-${hash}'; base-uri 'none'; frame-ancestors 'none'`);
    ctx.set('x-frame-options', 'DENY');
    ctx.set('cache-control', 'no-store');
  });
}
