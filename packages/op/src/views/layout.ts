import { escapeHtml } from './escape.js';

/** What the layout wraps: a page title and the HTML of the page's content. */
export interface LayoutProps {
  title: string;
  /** Trusted HTML produced by another view. */
  body: string;
}

const CSS = `*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f4f6;color:#111827}
main{max-width:26rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
@media (max-width:30rem){main{margin:0;border-radius:0;min-height:100vh}}
h1{font-size:1.4rem;margin:0 0 1rem}h2{font-size:1.05rem;margin:1.25rem 0 .5rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],input[type=password],input[type=email]{width:100%;padding:.6rem .7rem;font-size:1rem;border:1px solid #9ca3af;border-radius:.4rem}
input:focus,button:focus,a:focus{outline:3px solid #2563eb;outline-offset:2px}
button{display:block;width:100%;margin-top:1rem;padding:.7rem;font-size:1rem;font-weight:600;border-radius:.4rem;border:1px solid #1d4ed8;background:#1d4ed8;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#1f2937;border-color:#9ca3af}
.error{padding:.6rem .8rem;border-radius:.4rem;background:#fef2f2;color:#991b1b;border:1px solid #fecaca}
.muted{color:#4b5563;font-size:.9rem}
ul{padding-left:1.2rem}section+section{border-top:1px solid #e5e7eb;margin-top:1.25rem}
a{color:#1d4ed8}.logo{display:block;margin:0 auto 1rem;object-fit:contain}`;

/**
 * The default page around every view: self-contained (inline CSS, no scripts), readable on a phone.
 *
 * @example
 * layout({ title: 'Sign in', body: '<h1>Sign in</h1>' })
 */
export function layout({ title, body }: LayoutProps): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}
