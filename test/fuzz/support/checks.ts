/** What a fuzzed answer must never be, and a short report of the distinct failures. */
import type { RawResponse } from './raw-http.js';
import type { FuzzRequest } from './generator.js';

export const SLOW_MS = 5000;

// "at fn (/path/file.ts:12:3)", "at /x/y.js:1:2", also HTML-escaped: a file path with line and column
const STACK = /\bat\s[^\n]{0,200}?[\w.-]+\.(?:[cm]?js|tsx?):\d+:\d+/;

/** Why an answer is a failure (empty: it is fine). */
export function judge(res: RawResponse, secrets: Record<string, string>): string[] {
  const reasons: string[] = [];
  if (res.timedOut) reasons.push(`no answer within ${SLOW_MS} ms`);
  else if (res.status === 0) reasons.push('connection closed without an answer');
  else if (res.ms > SLOW_MS) reasons.push(`answered after ${Math.round(res.ms)} ms`);
  // a 500 is a bug; 502/503/504 are an upstream (the OP, WebFinger host, store) failing, and must say so with a stable code
  if (res.status === 500) reasons.push('status 500');
  else if (res.status > 500 && res.body.length > 0 // (a HEAD answer has no body to say it in)
    && !/"error":"[a-z_]+"|Error code: <code>[a-z_]+<\/code>/.test(res.body.toString('latin1'))) reasons.push(`status ${res.status} without a stable error code`);
  if (res.status === 503 && !res.headers['retry-after']) reasons.push('503 without Retry-After');
  const body = res.body.toString('latin1');
  if (STACK.test(body)) reasons.push('stack trace in body');
  if (body.includes('node_modules')) reasons.push('"node_modules" in body');
  for (const [name, value] of Object.entries(secrets)) if (value && body.includes(value)) reasons.push(`secret in body: ${name}`);
  return reasons;
}

export interface Failure { req: FuzzRequest; status: number; body: string; reasons: string[] }

const show = (s: string, max: number) => JSON.stringify(s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s);

export interface Shape extends Failure {
  /** How many failed requests share this shape, and on which routes. */
  count: number;
  routes: string[];
}

/** The answer with what varies between requests of one cause (ids, numbers, letter case) blurred. */
const answerShape = (body: string) => body.toLowerCase().replace(/[\w-]{20,}/g, '*').replace(/\d+/g, 'n').slice(0, 400);

/**
 * Failures grouped by cause: same reason, status and (blurred) answer; each group is shown by its
 * smallest request (fewest mutations, then shortest), with the routes it was seen on.
 */
export function distinct(failures: Failure[]): Shape[] {
  const groups = new Map<string, Shape>();
  const size = (f: Failure) => f.req.mutations.length * 1e7 + f.req.target.length + (f.req.body?.length ?? 0);
  for (const f of failures) {
    for (const reason of f.reasons) {
      // the OP's routes share causes (the mount check, the host): grouped by answer; the RP's by route
      const key = `${reason.replace(/\d+ ms/, 'N ms')}|${f.status}|${f.req.route.startsWith('RP') ? f.req.route : answerShape(f.body)}`;
      const g = groups.get(key);
      if (!g) { groups.set(key, { ...f, reasons: [reason], count: 1, routes: [f.req.route] }); continue; }
      g.count += 1;
      if (!g.routes.includes(f.req.route)) g.routes.push(f.req.route);
      if (size(f) < size(g)) Object.assign(g, { req: f.req, status: f.status, body: f.body });
    }
  }
  return [...groups.values()].sort((a, b) => a.reasons[0]!.localeCompare(b.reasons[0]!) || a.req.route.localeCompare(b.req.route));
}

export function describe(f: Shape): string {
  const headers = f.req.headers.map(([k, v]) => `${k}: ${v}`).join(' | ');
  return [
    `- [${f.reasons.join('; ')}] ${f.req.route} (mutations: ${f.req.mutations.join(', ') || 'none'}); ${f.count} request(s) on ${f.routes.sort().join(', ')}`,
    `    ${f.req.method} ${show(f.req.target, 300)} → ${f.status}`,
    `    headers: ${show(headers, 300)}`,
    ...(f.req.body ? [`    body: ${show(f.req.body.toString('latin1'), 200)}`] : []),
    `    answer: ${show(f.body, 200)}`,
  ].join('\n');
}
