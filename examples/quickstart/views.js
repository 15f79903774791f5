// Server-rendered pages of the quickstart application: plain template strings, every value escaped.
import { randomBytes } from 'node:crypto';
import { styles } from './styles.js';

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
  <h2 id="more">Add ${hints.map((h) => h.label).join(hints.length > 2 ? ', ' : ' or ').replace(/, ([^,]*)$/, ' or $1')}</h2>
  <p class="muted small">Set these environment variables and restart; register the callback URL with the provider.</p>
  <dl class="claims">
  ${hints.map((h) => html`<dt>${h.label}</dt><dd>${h.env.map((name, i) => html`${i ? ', ' : ''}<code class="nowrap">${name}</code>`)}<br><span class="muted small">callback: <code>${h.callback}</code></span></dd>`)}
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
export function errorPage({ status, title, message, code, loginUrl, user }) {
  return (nonce) =>
    layout({
      title,
      user,
      nonce,
      body: html`<h1>${title}</h1>
<p class="lead">${message}</p>
${code ? html`<p class="muted small">Error code: <code>${code}</code> · HTTP ${status}</p>` : ''}
<div class="actions">${loginUrl ? html`<a class="btn" href="${loginUrl}">Sign in again</a> ` : ''}<a class="btn${loginUrl ? ' secondary' : ''}" href="/">Back to the home page</a></div>`,
    });
}
