// Server-rendered pages of the quickstart application: plain template strings, every value escaped.
import { randomBytes } from 'node:crypto';

/** Escapes a value for HTML text and attribute contexts. */
export function escapeHtml(value) {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** Tags a template so interpolated values are escaped unless they are already `html` results. */
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((value, i) => {
    out += render(value) + strings[i + 1];
  });
  return new SafeHtml(out);
}

class SafeHtml {
  constructor(text) {
    this.text = text;
  }
  toString() {
    return this.text;
  }
}

function render(value) {
  if (value instanceof SafeHtml) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === false || value === null || value === undefined) return '';
  return escapeHtml(value);
}

const styles = `
:root{--fg:#1d2130;--muted:#5d6475;--bg:#f5f6fa;--card:#fff;--line:#e2e5ee;--accent:#4f46e5;--accent-dark:#4338ca;
--ok-bg:#ecfdf5;--ok:#065f46;--ok-line:#a7f3d0;--err-bg:#fef2f2;--err:#991b1b;--err-line:#fecaca;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;line-height:1.55;color:var(--fg);background:var(--bg)}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;flex-direction:column}
.wrap{width:100%;max-width:46rem;margin:0 auto;padding:0 1.25rem}
header.top{background:#fff;border-bottom:1px solid var(--line)}
header.top .wrap{display:flex;align-items:center;justify-content:space-between;min-height:3.75rem;gap:1rem}
.brand{display:flex;align-items:center;gap:.55rem;font-weight:700;color:var(--fg);text-decoration:none;letter-spacing:-.01em}
.logo{width:1.6rem;height:1.6rem;border-radius:7px;background:linear-gradient(135deg,#6366f1,#0ea5e9);display:inline-block}
.who-small{color:var(--muted);font-size:.92rem}
main.wrap{flex:1;padding-top:2.5rem;padding-bottom:3rem}
h1{font-size:1.9rem;line-height:1.2;margin:0 0 .5rem;letter-spacing:-.02em}
h2{font-size:1.05rem;margin:0 0 .9rem;letter-spacing:-.01em}
p{margin:0 0 1rem}
.lead{color:var(--muted);margin:0 0 2rem;font-size:1.07rem;max-width:38rem}
.muted{color:var(--muted)}
.small{font-size:.88rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:1.5rem;margin:0 0 1.25rem;box-shadow:0 1px 2px rgba(16,24,40,.05)}
.card > :last-child{margin-bottom:0}
.btn{display:inline-flex;align-items:center;justify-content:center;gap:.6rem;font:inherit;font-weight:600;font-size:.97rem;padding:.62rem 1.1rem;border-radius:9px;border:1px solid transparent;cursor:pointer;text-decoration:none;background:var(--accent);color:#fff;line-height:1.3}
.btn:hover{background:var(--accent-dark)}
.btn:disabled{opacity:.45;cursor:not-allowed}
.btn:focus-visible{outline:3px solid #a5b4fc;outline-offset:2px}
.btn.secondary{background:#fff;color:var(--fg);border-color:var(--line)}
.btn.secondary:hover{background:#f3f4f8}
.btn.danger{background:#fff;color:var(--err);border-color:var(--err-line)}
.btn.danger:hover{background:var(--err-bg)}
.providers{display:grid;gap:.7rem;max-width:24rem}
.providers .btn{width:100%;padding:.75rem 1rem}
.mark{width:1.45rem;height:1.45rem;border-radius:50%;display:inline-grid;place-items:center;font-size:.8rem;font-weight:800;background:rgba(255,255,255,.22)}
.btn.google{background:#fff;color:#1f1f1f;border-color:#dadce0}.btn.google:hover{background:#f8f9fa}
.btn.google .mark{background:#4285f4;color:#fff}
.btn.microsoft{background:#2f2f2f}.btn.microsoft:hover{background:#1b1b1b}
.btn.github{background:#24292f}.btn.github:hover{background:#111418}
.actions{display:flex;flex-wrap:wrap;gap:.6rem;align-items:center;margin:0 0 2rem}
form{margin:0}
.who{display:flex;gap:1rem;align-items:center;margin-bottom:1.75rem}
.who h1{margin:0}
.avatar{width:3.75rem;height:3.75rem;border-radius:50%;background:#e0e7ff;color:var(--accent);display:grid;place-items:center;font-weight:700;font-size:1.35rem;object-fit:cover;flex:none}
.badge{display:inline-block;font-size:.78rem;font-weight:600;padding:.1rem .55rem;border-radius:999px;background:#eef2ff;color:var(--accent-dark);vertical-align:middle}
.badge.warn{background:#fff7ed;color:#9a3412}
dl.claims{display:grid;grid-template-columns:minmax(8rem,max-content) 1fr;gap:.45rem 1.5rem;margin:0}
dl.claims dt{color:var(--muted);font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.86rem;padding-top:.1rem}
dl.claims dd{margin:0;overflow-wrap:anywhere}
.stat{font-size:1.5rem;font-weight:700;letter-spacing:-.01em;font-variant-numeric:tabular-nums}
.notice{padding:.8rem 1rem;border-radius:10px;background:var(--ok-bg);color:var(--ok);border:1px solid var(--ok-line);margin:0 0 1.5rem}
.notice.error{background:var(--err-bg);color:var(--err);border-color:var(--err-line)}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
pre{background:#0f172a;color:#e2e8f0;padding:1rem 1.1rem;border-radius:10px;overflow:auto;margin:0;line-height:1.45}
table.accounts{border-collapse:collapse;width:100%;font-size:.95rem}
table.accounts th,table.accounts td{text-align:left;padding:.45rem .75rem .45rem 0;border-bottom:1px solid var(--line)}
table.accounts th{color:var(--muted);font-weight:600;font-size:.85rem}
footer{color:var(--muted);font-size:.85rem;padding-bottom:2rem}
footer a{color:inherit}
`;

/**
 * The page frame. `nonce` allows the page's own inline script under the Content-Security-Policy
 * that `sendPage` sets.
 */
export function layout({ title, user, body, nonce, script }) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Quickstart</title>
<style>${new SafeHtml(styles)}</style>
</head>
<body>
<header class="top"><div class="wrap">
  <a class="brand" href="/"><span class="logo" aria-hidden="true"></span>Quickstart</a>
  ${user ? html`<span class="who-small">Signed in as <a href="/profile">${user.name || user.email || user.sub}</a></span>` : html`<span class="who-small">Not signed in</span>`}
</div></header>
<main class="wrap">
${body}
</main>
<footer class="wrap">An <a href="https://openid.net/connect/">OpenID Connect</a> demo built with <code>@openid-express/rp</code> and <code>@openid-express/op</code>.</footer>
${script ? html`<script nonce="${nonce}">${new SafeHtml(script)}</script>` : ''}
</body>
</html>`;
}

/** Sends a page with a strict Content-Security-Policy (inline styles, one nonce'd script). */
export function sendPage(res, status, page) {
  const nonce = randomBytes(16).toString('base64');
  res
    .status(status)
    .set('Content-Security-Policy', `default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-${nonce}'; img-src https: data:; base-uri 'none'`)
    .set('Cache-Control', 'no-store')
    .type('html')
    .send(String(page(nonce)));
}

/** The home page: one button per configured provider, or a welcome back. */
export function homePage({ user, providers, accounts, setupHints, notice }) {
  return (nonce) =>
    layout({
      title: 'Home',
      user,
      nonce,
      body: html`
${notice ? html`<div class="notice" role="status">${notice}</div>` : ''}
${user ? welcomeBack(user) : signInCard(providers)}
${!user && accounts.length ? demoAccountsCard(accounts) : ''}
${!user && setupHints.length ? moreProvidersCard(setupHints) : ''}`,
    });
}

function welcomeBack(user) {
  return html`<h1>Welcome back, ${user.given_name || user.name || user.sub}</h1>
<p class="lead">You are signed in through <strong>${user.providerLabel}</strong>.</p>
<div class="actions"><a class="btn" href="/profile">Open your profile</a>
<form method="post" action="/auth/logout"><input type="hidden" name="returnTo" value="/signed-out"><button class="btn secondary" type="submit">Sign out</button></form></div>`;
}

function signInCard(providers) {
  return html`<h1>Sign in to the Quickstart app</h1>
<p class="lead">This application is an OpenID Connect Relying Party. Choose where you have an account;
you will come back here signed in.</p>
<section class="card" aria-labelledby="signin">
  <h2 id="signin">Sign in with</h2>
  <div class="providers">
  ${providers.map(
    (p) => html`<a class="btn ${p.style}" href="${p.loginUrl}"><span class="mark" aria-hidden="true">${p.mark}</span>${p.label}</a>`,
  )}
  </div>
</section>`;
}

function demoAccountsCard(accounts) {
  return html`<section class="card" aria-labelledby="accounts">
  <h2 id="accounts">Demo accounts at the Demo OP</h2>
  <table class="accounts"><thead><tr><th>Username</th><th>Password</th><th>Name</th></tr></thead><tbody>
  ${accounts.map((a) => html`<tr><td><code>${a.username}</code></td><td><code>${a.password}</code></td><td>${a.claims.name}</td></tr>`)}
  </tbody></table>
</section>`;
}

function moreProvidersCard(hints) {
  return html`<section class="card" aria-labelledby="more">
  <h2 id="more">Add Google, Microsoft or GitHub</h2>
  <p class="muted small">Set these environment variables and restart; register the callback URL with the provider.</p>
  <dl class="claims">
  ${hints.map((h) => html`<dt>${h.label}</dt><dd><code>${h.env}</code><br><span class="muted small">callback: <code>${h.callback}</code></span></dd>`)}
  </dl>
</section>`;
}

/** The protected profile page: who you are, the access token's life, and what you can do. */
export function profilePage({ user, token, canRefresh, claims, userinfo, notice, error, csrf }) {
  return (nonce) =>
    layout({
      title: 'Your profile',
      user,
      nonce,
      script: token?.expiresAt ? countdownScript : undefined,
      body: html`
${notice ? html`<div class="notice" role="status">${notice}</div>` : ''}
${error ? html`<div class="notice error" role="alert">${error}</div>` : ''}
<div class="who">
  ${user.picture ? html`<img class="avatar" src="${user.picture}" alt="">` : html`<span class="avatar" aria-hidden="true">${initials(user)}</span>`}
  <div><h1>${user.name || user.sub}</h1>
  <span class="muted">${user.email || ''}</span> ${user.email && user.emailVerified === false ? html`<span class="badge warn">unverified</span>` : ''}
  <span class="badge">${user.providerLabel}</span></div>
</div>
<section class="card" aria-labelledby="token">
  <h2 id="token">Access token</h2>
  ${token ? tokenSummary(token) : html`<p class="muted">This provider gave no access token.</p>`}
  <div class="actions">
    ${canRefresh
      ? html`<form method="post" action="/profile/refresh"><input type="hidden" name="csrf" value="${csrf}"><button class="btn" type="submit">Refresh tokens</button></form>`
      : html`<button class="btn" type="button" disabled title="This provider gave no refresh token">Refresh tokens</button>`}
    <form method="post" action="/profile/userinfo"><input type="hidden" name="csrf" value="${csrf}"><button class="btn secondary" type="submit">Call userinfo</button></form>
    <form method="post" action="/auth/logout"><input type="hidden" name="returnTo" value="/signed-out"><button class="btn danger" type="submit">Log out</button></form>
  </div>
</section>
${userinfo ? html`<section class="card" aria-labelledby="userinfo"><h2 id="userinfo">Userinfo response</h2><pre>${JSON.stringify(userinfo, null, 2)}</pre></section>` : ''}
${claimsCard('claims', 'Your claims', Object.entries(claims).filter(([k]) => !SIGN_IN_CLAIMS.has(k)))}
${claimsCard('sign-in', 'About this sign-in', Object.entries(claims).filter(([k]) => SIGN_IN_CLAIMS.has(k)))}`,
    });
}

// ID token claims about the sign-in itself rather than the person.
const SIGN_IN_CLAIMS = new Set(['iss', 'aud', 'azp', 'exp', 'iat', 'nbf', 'auth_time', 'nonce', 'at_hash', 'c_hash', 's_hash', 'sid', 'acr', 'amr', 'jti']);

function claimsCard(id, title, entries) {
  if (!entries.length) return '';
  return html`<section class="card" aria-labelledby="${id}">
  <h2 id="${id}">${title}</h2>
  <dl class="claims">
  ${entries.map(([k, v]) => html`<dt>${k}</dt><dd>${formatClaim(k, v)}</dd>`)}
  </dl>
</section>`;
}

function tokenSummary(token) {
  if (!token.expiresAt) {
    return html`<p>The provider gave no expiry for it.</p>${token.scope ? html`<p class="muted small">Scope: <code>${token.scope}</code></p>` : ''}`;
  }
  const at = new Date(token.expiresAt * 1000);
  return html`<p>Expires <span class="stat" data-expires-at="${token.expiresAt}">${relative(token.expiresAt)}</span>
<span class="muted small">(at <time datetime="${at.toISOString()}">${at.toLocaleTimeString('en-GB', { timeZone: 'UTC' })} UTC</time>)</span></p>
${token.scope ? html`<p class="muted small">Scope: <code>${token.scope}</code></p>` : ''}
${token.refreshed ? html`<p class="muted small">Refreshed ${token.refreshed} time${token.refreshed === 1 ? '' : 's'} this session.</p>` : ''}`;
}

// Counts the expiry down; without JS the server-rendered text stays correct at load time.
const countdownScript = `
for (const el of document.querySelectorAll('[data-expires-at]')) {
  const at = Number(el.dataset.expiresAt) * 1000;
  const tick = () => {
    const s = Math.round((at - Date.now()) / 1000);
    el.textContent = s <= 0 ? 'now (expired)' : 'in ' + Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  };
  tick();
  setInterval(tick, 1000);
}`;

function relative(expiresAt) {
  const s = Math.round(expiresAt - Date.now() / 1000);
  if (s <= 0) return 'now (expired)';
  return `in ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function initials(user) {
  const name = String(user.name || user.email || user.sub || '?');
  return name
    .split(/\s+/)
    .slice(0, 2)
    .map((w) => w[0]?.toUpperCase() ?? '')
    .join('');
}

function formatClaim(key, value) {
  if (['iat', 'exp', 'auth_time', 'updated_at'].includes(key) && typeof value === 'number') {
    return html`${value} <span class="muted small">(${new Date(value * 1000).toISOString()})</span>`;
  }
  if (value !== null && typeof value === 'object') return html`<code>${JSON.stringify(value)}</code>`;
  return String(value);
}

/** A clear page for anything that went wrong, with the stable error code when there is one. */
export function errorPage({ status, title, message, code, user }) {
  return (nonce) =>
    layout({
      title,
      user,
      nonce,
      body: html`<h1>${title}</h1>
<p class="lead">${message}</p>
${code ? html`<p class="muted small">Error code: <code>${code}</code> · HTTP ${status}</p>` : ''}
<div class="actions"><a class="btn" href="/">Back to the home page</a></div>`,
    });
}
