import { escapeHtml, pageHref } from './escape.js';

/** What the layout wraps: a page title and the HTML of the page's content, under the OP's name and logo. */
export interface LayoutProps {
  title: string;
  /** Trusted HTML produced by another view. */
  body: string;
  /** The OP's name (`op({ name })`, default the issuer's host): in the header and the page title. */
  name?: string;
  /** The OP's logo (`op({ logoUri })`): an https: URL or a path on the OP's site. */
  logoUri?: string;
}

// One small style for every page: system fonts, a 26rem card that becomes the full width below 30rem,
// long words and URLs wrap (no sideways scrolling at 320-360px), a visible focus ring, labels above
// inputs, contrast of at least 4.5:1 for text and 3:1 for input and button borders.
const CSS = `*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;background:#f3f4f6;color:#111827;overflow-wrap:anywhere}
.site{display:flex;align-items:center;gap:.6rem;max-width:26rem;margin:1.5rem auto 0;padding:0 1.5rem;font-weight:600;color:#1f2937}
.site img{height:2rem;width:auto;max-width:8rem;object-fit:contain}
main{max-width:26rem;margin:1rem auto 2rem;padding:1.5rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
@media (max-width:30rem){.site{margin-top:1rem;padding:0 1rem}main{margin:.75rem 0 0;padding:1.25rem 1rem;border-radius:0}}
h1{font-size:1.4rem;line-height:1.3;margin:0 0 1rem}h2{font-size:1.05rem;margin:1.25rem 0 .5rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],input[type=password],input[type=email],input[type=tel],input[type=number]{width:100%;padding:.6rem .7rem;font:inherit;color:inherit;background:#fff;border:1px solid #6b7280;border-radius:.4rem}
:focus-visible,input:focus{outline:3px solid #2563eb;outline-offset:2px}
button,.button{display:block;width:100%;margin-top:1rem;padding:.7rem;font:inherit;font-weight:600;text-align:center;text-decoration:none;border-radius:.4rem;border:1px solid #1d4ed8;background:#1d4ed8;color:#fff;cursor:pointer}
button:hover,.button:hover{background:#1e40af}
button.secondary{background:#fff;color:#1f2937;border-color:#6b7280}button.secondary:hover{background:#f3f4f6}
.error{padding:.6rem .8rem;border-radius:.4rem;background:#fef2f2;color:#991b1b;border:1px solid #fecaca}
.muted{color:#4b5563;font-size:.9rem}
.account{padding:.6rem .8rem;border-radius:.4rem;background:#f3f4f6}
ul{padding-left:1.2rem}section+section{border-top:1px solid #e5e7eb;margin-top:1.25rem}
code{font-size:.9em}img{max-width:100%}
a{color:#1d4ed8}.logo{display:block;margin:0 auto 1rem;object-fit:contain}`;

/**
 * The default page around every view: self-contained (inline CSS, no scripts), readable on a phone,
 * with the OP's name (and logo) in the header and the title.
 *
 * @example
 * layout({ title: 'Sign in', body: '<h1>Sign in</h1>', name: 'Example ID' })
 */
export function layout({ title, body, name, logoUri }: LayoutProps): string {
  const logo = pageHref(logoUri);
  const header = name || logo
    ? `<header class="site">${logo ? `<img src="${escapeHtml(logo)}" alt="${name ? '' : 'Logo'}" height="32">` : ''}${name ? `<span>${escapeHtml(name)}</span>` : ''}</header>\n`
    : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(name ? `${title} · ${name}` : title)}</title>
<style>${CSS}</style>
</head>
<body>
${header}<main>
${body}
</main>
</body>
</html>`;
}
