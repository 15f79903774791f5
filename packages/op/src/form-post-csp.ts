import { createHash } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

const SCRIPT = /<script>([\s\S]*?)<\/script>/;

/**
 * oidc-provider's `response_mode=form_post` page (and JARM's `form_post.jwt`: an inline script that
 * posts the answer to the client's `redirect_uri`) gets a Content-Security-Policy of its own: just that script, and no
 * `form-action` (browsers apply it to the redirects that follow the post too, and a client may send
 * the browser on to another origin). An app-wide `helmet()` before op() otherwise left its own
 * policy on it, whose `form-action 'self'` stopped the post: the user saw a blank "Submitting
 * Callback" page and the client never got its code.
 *
 * @example
 * formPostPolicy(provider);
 */
export function formPostPolicy(provider: Provider): void {
  provider.use(async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    await next();
    const mode = ctx.oidc?.params?.response_mode;
    if ((mode !== 'form_post' && mode !== 'form_post.jwt') || typeof ctx.body !== 'string' || !ctx.response.is('html')) return;
    const script = SCRIPT.exec(ctx.body)?.[1];
    if (script === undefined) return;
    const hash = createHash('sha256').update(script).digest('base64');
    ctx.set('content-security-policy', `default-src 'none'; script-src 'sha256-${hash}'; base-uri 'none'; frame-ancestors 'none'`);
  });
}
