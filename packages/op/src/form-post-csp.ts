import { createHash } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

const SCRIPT = /<script>([\s\S]*?)<\/script>/;
const ACTION = /<form method="post" action="([^"]*)"/;

/**
 * oidc-provider's `response_mode=form_post` page (an inline script that posts the answer to the
 * client's `redirect_uri`) gets a Content-Security-Policy of its own: just that script, forms to
 * that address only. An app-wide `helmet()` before op() otherwise left its own policy on it, whose
 * `form-action 'self'` stopped the post: the user saw a blank "Submitting Callback" page and the
 * client never got its code.
 *
 * @example
 * formPostPolicy(provider);
 */
export function formPostPolicy(provider: Provider): void {
  provider.use(async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    await next();
    const mode = ctx.oidc?.params?.response_mode;
    if (mode !== 'form_post' || typeof ctx.body !== 'string' || !ctx.response.is('html')) return;
    const script = SCRIPT.exec(ctx.body)?.[1];
    const action = ACTION.exec(ctx.body)?.[1];
    if (script === undefined || action === undefined) return;
    const target = formTarget(action.replace(/&amp;/g, '&'));
    if (!target) return;
    const hash = createHash('sha256').update(script).digest('base64');
    ctx.set('content-security-policy', `default-src 'none'; script-src 'sha256-${hash}'; form-action ${target}; base-uri 'none'; frame-ancestors 'none'`);
  });
}

/** The CSP source for posting to `action`: its origin (http, https), or its scheme (a native app's). */
function formTarget(action: string): string | undefined {
  try {
    const url = new URL(action);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.origin;
    return /^[a-z][a-z0-9+.-]*:$/i.test(url.protocol) ? url.protocol : undefined;
  } catch {
    return undefined;
  }
}
