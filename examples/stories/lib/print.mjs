// The step printer: each step as the seed's demos print it (the request, then the parsed and
// verified response), readable in an 80-column terminal; or one JSON object per line (--json).

export const WIDTH = 80;
const IND = '   ';

/** One output line, cut to the terminal width. */
function fit(text) {
  return [...text].length > WIDTH ? `${[...text].slice(0, WIDTH - 1).join('')}…` : text;
}

function scalar(value) {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length === 0) return '[]';
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) return value.join(' ');
  return JSON.stringify(value);
}

/** A writer of lines (stdout by default). */
export function textPrinter(write = (s) => process.stdout.write(s)) {
  const out = (text = '') => write(`${fit(text)}\n`);

  /** `key: value` lines; JWTs named in `jwts` are decoded under their field. */
  const fields = (indent, object, jwts = {}) => {
    for (const [key, value] of Object.entries(object ?? {})) {
      if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0 && !jwts[key]) {
        out(`${indent}${key}:`);
        fields(indent + IND, value);
        continue;
      }
      if (Array.isArray(value) && value.length > 0 && value.every((v) => v && typeof v === 'object' && !Array.isArray(v))) {
        out(`${indent}${key}:`); // objects: one after the other
        for (const v of value) {
          const [first, ...more] = Object.entries(v);
          if (!first) continue;
          long(`${indent}${IND}- ${first[0]}: `, scalar(first[1]), true);
          fields(`${indent}${IND}  `, Object.fromEntries(more));
        }
        continue;
      }
      if (Array.isArray(value) && value.some((v) => typeof v === 'string' && v.includes(' '))) {
        out(`${indent}${key}:`); // sentences: one per line
        for (const v of value) long(`${indent}${IND}- `, scalar(v), true);
        continue;
      }
      long(`${indent}${key}: `, `${scalar(value)}${jwts[key] ? ' (JWT)' : ''}`, typeof value === 'string' || Array.isArray(value));
      if (jwts[key]) jwt(indent + IND, jwts[key]);
    }
  };
  const jwt = (indent, { header, claims }) => {
    const parts = Object.entries(header).map(([k, v]) => `${k}=${k === 'jwk' && v ? [v.kty, v.crv].filter(Boolean).join(' ') : scalar(v)}`);
    long(`${indent}header: `, parts.join(', '), true);
    out(`${indent}claims:`);
    for (const [k, v] of Object.entries(claims)) long(`${indent}${IND}${k}: `, scalar(v), typeof v === 'string' || Array.isArray(v));
  };
  /** `head` + `text`; words that do not fit go on to lines indented under the value (JSON is cut instead). */
  const long = (head, text, words) => {
    if (!words || head.length + text.length <= WIDTH) {
      out(`${head}${text}`);
      return;
    }
    const pad = ' '.repeat(Math.min(head.length, 40));
    const [first, ...rest] = wrap(text, WIDTH - head.length);
    out(`${head}${first}`);
    if (rest.length) wrap(rest.join(' '), WIDTH - pad.length).forEach((l) => out(`${pad}${l}`));
  };

  const request = (r) => {
    out(`-- REQUEST --${r.via ? ` (${r.via})` : ''}`);
    out(`${IND}${r.method} ${r.url}`);
    if (r.auth) {
      const { method, ...rest } = r.auth;
      out(`${IND}client authentication: ${method}`);
      for (const [k, v] of Object.entries(rest)) out(`${IND}${IND}${k}: ${v}`);
    }
    const jwts = r.jwts ?? {};
    for (const [name, value] of Object.entries(r.headers ?? {})) {
      const label = name === 'dpop' ? 'DPoP' : name[0].toUpperCase() + name.slice(1);
      const key = name === 'dpop' ? 'DPoP' : name;
      out(`${IND}${label}: ${value}`);
      if (jwts[key]) jwt(IND + IND, jwts[key]);
    }
    if (r.query) {
      out(`${IND}query:`);
      fields(IND + IND, r.query, jwts);
    }
    if (r.form) {
      out(`${IND}form:`);
      fields(IND + IND, r.form, jwts);
    }
    if (r.json !== undefined) {
      out(`${IND}JSON:`);
      fields(IND + IND, r.json, jwts);
    }
  };

  const response = (r) => {
    if (!r) return;
    if (r.error) {
      out(`-- RESPONSE -- none: ${r.error}`);
      return;
    }
    out(`-- RESPONSE --${r.via ? ` (${r.via})` : ''} ${r.status ?? ''}`.trimEnd());
    if (r.url) out(`${IND}${r.method ?? 'GET'} ${r.url}`);
    for (const [name, value] of Object.entries(r.headers ?? {})) out(`${IND}${name}: ${value}`);
    if (r.params) fields(IND, r.params, r.jwts);
    else if (typeof r.body === 'string') out(`${IND}${r.body}`);
    else if (r.body) fields(IND, r.body, r.jwts);
  };

  const userAgent = (hops, origin) => {
    out('-- USER AGENT -- (scripted: alice at the OP\'s pages, no browser)');
    /** A path on the OP with long ids cut; another site's URL in full (without its query). */
    const where = (url) => {
      const query = url.endsWith('?…') ? '?…' : '';
      const u = new URL(query ? url.slice(0, -2) : url);
      const path = u.pathname.split('/').map((seg) => (seg.length > 12 ? `${seg.slice(0, 6)}…` : seg)).join('/');
      return `${u.origin === origin ? '' : u.origin}${path}${query}`;
    };
    for (const h of hops) {
      const form = h.form ? ` ${Object.entries(h.form).filter(([k]) => !/(xsrf|csrf|^authenticator$)/i.test(k)).map(([k, v]) => `${k}=${v}`).join(' ')}` : '';
      out(`${IND}${h.method.padEnd(4)} ${where(h.url)}${h.label ? ` (${h.label})` : ''}${form}`.trimEnd());
      out(`${IND}     → ${h.status} ${h.location ? where(h.location) : `"${h.page}"`}`);
    }
  };

  return {
    start(s) {
      out('#'.repeat(WIDTH));
      out(`# ${s.title} — IdPyOIDC ${s.seed}`);
      wrap(`${s.name}: ${s.shows}`, WIDTH - 2).forEach((l) => out(`# ${l}`));
      out('#'.repeat(WIDTH));
      out(`OP (op()):      ${s.issuer}`);
      out(`client (RelyingParty, tier 2): ${s.client}`);
      for (const w of s.warnings ?? []) {
        out('op() warned at start-up:');
        wrap(w, WIDTH - 3).forEach((l) => out(`${IND}${l}`));
      }
      out();
    },
    step(s) {
      const title = ` ${s.n} ${s.name} `;
      const left = Math.floor((WIDTH - title.length) / 2);
      out(`${'='.repeat(Math.max(3, left))}${title}${'='.repeat(Math.max(3, WIDTH - left - title.length))}`);
      for (const note of s.notes ?? []) wrap(note, WIDTH).forEach((l) => out(l));
      for (const e of s.exchanges) {
        if (e.userAgent) {
          userAgent(e.userAgent, s.opOrigin);
          continue;
        }
        if (e.request) request(e.request);
        response(e.response);
      }
      if (s.atOP?.length) {
        out('-- AT THE OP --');
        for (const note of s.atOP) wrap(note, WIDTH - 3).forEach((l) => out(`${IND}${l}`));
      }
      if (s.result && Object.keys(s.result).length > 0) {
        out(`-- VERIFIED RESPONSE --${s.resultFrom ? ` (${s.resultFrom})` : ''}`);
        fields(IND, s.result, s.resultJwts);
      }
      if (s.checks.length > 0) {
        out('-- VERIFIED --');
        for (const c of s.checks) wrap(`${c.ok ? '✓' : '✗'} ${c.what}`, WIDTH - 5).forEach((l, i) => out(`${IND}${i ? '  ' : ''}${l}`));
      }
      out();
    },
    end(e) {
      out(e.ok ? `${e.name}: every response verified (${e.steps} steps).` : `${e.name}: FAILED at ${e.failed.join(', ')}.`);
    },
  };
}

/** Words of `text` in lines of at most `width` characters (a long word stays whole and is cut later). */
function wrap(text, width) {
  const lines = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** One JSON object per line. */
export function jsonPrinter(write = (s) => process.stdout.write(s)) {
  const line = (type, record) => write(`${JSON.stringify({ type, ...record })}\n`);
  return {
    start: (s) => line('start', s),
    step: (s) => line('step', s),
    end: (e) => line('end', e),
  };
}
