/**
 * `doctor()`: checks a running configuration against each configured OP and the app's session
 * settings, and returns a checklist (✔ / ✘ with the fix / – skipped with the reason). One check per
 * file in this folder; this file runs them and prints the report. The CLI (`openid-express doctor`)
 * is `../cli.ts`.
 */
import type { Application } from 'express';
import { RelyingParty } from '../relying-party.js';
import type { RpRouter } from '../router.js';
import { toRpError } from '../errors.js';
import { inspectApp, isApp, isRpRouter } from './app.js';
import { Http } from './http.js';
import { sessionFacts } from './session-facts.js';
import { checkDiscovery, fetchDiscovery } from './discovery.js';
import { checkIssuer } from './issuer.js';
import { checkHttps } from './https.js';
import { checkClock } from './clock.js';
import { checkMetadata } from './metadata.js';
import { checkCredentials } from './credentials.js';
import { checkCallback } from './callback.js';
import { checkPostLogout } from './post-logout.js';
import { checkBackchannel } from './backchannel.js';
import { checkJwks } from './jwks.js';
import { checkSession } from './session.js';
import { checkCookieSecure } from './cookie-secure.js';
import { checkCookieSameSite } from './cookie-samesite.js';
import { checkTrustProxy } from './trust-proxy.js';
import { checkCookieName, collectOpCookies } from './cookie-name.js';
import { checkSessionStore } from './session-store.js';
import { checkCoordination } from './coordination.js';
import { evictionPolicyOf } from '../coordination.js';
import { meta, metadataOf, type AppContext, type CheckResult, type DoctorCheck, type DoctorOptions, type DoctorReport, type ProviderContext } from './types.js';

export type { DoctorCheck, DoctorOptions, DoctorReport } from './types.js';

/**
 * Checks the RP's configuration against each configured OP (discovery, issuer, https, clock, the
 * OP's keys (`jwks_uri`), client credentials, callback and post-logout URIs, back-channel logout) and the app's session settings
 * (cookie secure / SameSite / name, trust proxy, session store), and returns the checklist.
 * It makes real requests to the OPs (a made-up code at the token endpoint, `prompt=none` at the
 * authorization endpoint, an end-session request without id_token_hint); nothing in the app changes.
 *
 * @example
 * ```ts
 * const auth = rp({ baseURL, providers: { corp: oidc({ issuer, clientId, clientSecret }) } });
 * app.use(session(sessionOptions));
 * app.use(auth);
 * const report = await doctor(auth, { app });
 * console.log(formatReport(report)); // ✔ / ✘ lines, each ✘ with its fix
 * ```
 */
export async function doctor(target: RpRouter | RelyingParty | Application, options: DoctorOptions = {}): Promise<DoctorReport> {
  let rp: RelyingParty;
  if (target instanceof RelyingParty) rp = target;
  else if (isRpRouter(target)) rp = target.relyingParty;
  else if (isApp(target)) {
    const [router] = inspectApp(target).routers;
    if (!router) throw new TypeError('doctor(app): no rp() router is mounted in this app; call doctor(router) with what rp() returned');
    rp = router.relyingParty;
    options = { app: target, ...options };
  } else {
    throw new TypeError('doctor() needs what rp() returned (or its relyingParty, or the Express app it is mounted in)');
  }
  const instances = options.instances ?? 1;
  if (!Number.isInteger(instances) || instances < 1) throw new TypeError('doctor(): "instances" must be a whole number >= 1');
  const http = new Http(options.fetch ?? fetch, options.timeout ?? 10_000);
  const names = options.providers ?? Object.keys(rp.options.providers);
  for (const name of names) if (!Object.hasOwn(rp.options.providers, name)) throw new TypeError(`doctor(): no provider is named "${name}"`);

  const contexts = names.map((name): ProviderContext => ({ name, p: rp.options.providers[name], rp, http, options }));
  const providerChecks = await Promise.all(contexts.map((ctx) => checkProvider(ctx)));

  const facts = sessionFacts(rp, options);
  if (facts.facts?.name !== undefined) await Promise.all(contexts.map((ctx) => collectOpCookies(ctx).catch(() => undefined)));
  // read once by redisCoordination() at start-up (a Redis that stalls does not hold the report)
  let timer: Parameters<typeof clearTimeout>[0];
  const evictionPolicy = await Promise.race([
    evictionPolicyOf(rp.options.coordination),
    new Promise<undefined>((resolve) => void (timer = setTimeout(resolve, 3_000))),
  ]).finally(() => clearTimeout(timer));
  const app: AppContext = {
    rp, options, http, evictionPolicy,
    session: facts.facts,
    sessionUnknown: facts.unknown,
    opHosts: contexts.map((ctx) => ({ name: ctx.name, issuer: ctx.p.issuer ?? meta(metadataOf(ctx), 'issuer') ?? ctx.name, hosts: hostsOf(ctx) })),
  };
  const appChecks: DoctorCheck[] = [];
  const add = (name: string, run: (ctx: AppContext) => CheckResult | undefined): void => {
    const result = guard(() => run(app));
    if (result) appChecks.push({ name, ...result });
  };
  add('session', checkSession);
  add('cookie-secure', checkCookieSecure);
  add('cookie-samesite', checkCookieSameSite);
  add('trust-proxy', checkTrustProxy);
  add('cookie-name', checkCookieName);
  add('session-store', checkSessionStore);
  add('coordination', checkCoordination);

  const checks = [...providerChecks.flat(), ...appChecks];
  return { ok: checks.every((c) => c.ok !== false), baseURL: rp.options.baseURL, checks };
}

/** The checks of one OP, in order; the probes that need the OP's metadata run once the RP could build it. */
async function checkProvider(ctx: ProviderContext): Promise<DoctorCheck[]> {
  if (ctx.p.issuer && !ctx.p.providerInfo) ctx.discovery = await fetchDiscovery(ctx);
  const first: Array<[string, CheckResult | undefined]> = [
    ['discovery', guard(() => checkDiscovery(ctx))],
    ['issuer', guard(() => checkIssuer(ctx))],
    ['https', guard(() => checkHttps(ctx))],
  ];
  try {
    ctx.config = await ctx.rp.providerInfo(ctx.name);
  } catch (err) {
    ctx.configError = toRpError(err).message;
  }
  // a failure the checks above explain is not repeated
  if (!first.some(([, r]) => r?.ok === false)) first.push(['metadata', checkMetadata(ctx)]);
  const [jwks, credentials, callback, postLogout, backchannel] = await Promise.all([
    guardAsync(() => checkJwks(ctx)),
    guardAsync(() => checkCredentials(ctx)),
    guardAsync(() => checkCallback(ctx)),
    guardAsync(() => checkPostLogout(ctx)),
    guardAsync(() => checkBackchannel(ctx)),
  ]);
  // the clock is read last: without discovery, from the probes' answers
  const ordered: Array<[string, CheckResult | undefined]> = [
    ...first.slice(0, 3), ['clock', guard(() => checkClock(ctx))], ...first.slice(3),
    ['jwks', jwks], ['credentials', credentials], ['callback', callback], ['post-logout', postLogout], ['backchannel-logout', backchannel],
  ];
  return ordered.filter((e): e is [string, CheckResult] => !!e[1]).map(([name, result]) => ({ provider: ctx.name, name, ...result }));
}

function hostsOf(ctx: ProviderContext): string[] {
  const m = metadataOf(ctx);
  const urls = [ctx.p.issuer, ...['issuer', 'authorization_endpoint', 'token_endpoint', 'end_session_endpoint'].map((k) => meta(m, k))];
  const hosts = new Set<string>();
  for (const u of urls) {
    try {
      if (u) hosts.add(new URL(u).hostname);
    } catch {
      // not a URL: nothing to compare
    }
  }
  return [...hosts];
}

/** A check that throws is a ✘ saying so (a bug in the check, or something very unexpected): never a silent pass. */
function guard(run: () => CheckResult | undefined): CheckResult | undefined {
  try {
    return run();
  } catch (err) {
    return crashed(err);
  }
}

async function guardAsync(run: () => Promise<CheckResult | undefined>): Promise<CheckResult | undefined> {
  try {
    return await run();
  } catch (err) {
    return crashed(err);
  }
}

const crashed = (err: unknown): CheckResult => ({
  ok: false,
  detail: `the check could not run: ${(err as Error)?.message ?? String(err)}`,
  fix: 'fix what the message names; if it names nothing of your configuration, report it as a bug of openid-express',
});

const MARK = { true: '✔', false: '✘', skipped: '–' } as const;

/**
 * The report as the checklist the CLI prints: one line per check (✔ / ✘ / –), grouped by provider,
 * each ✘ followed by its fix, and a summary line.
 *
 * @example
 * ```ts
 * console.log(formatReport(await doctor(router, { app })));
 * ```
 */
export function formatReport(report: DoctorReport): string {
  const lines = [`openid-express doctor: ${report.baseURL}`];
  let group: string | undefined | null = null;
  for (const c of report.checks) {
    if (c.provider !== group) {
      group = c.provider;
      lines.push('', group === undefined ? 'session' : `provider "${group}"`);
    }
    lines.push(`  ${MARK[String(c.ok) as keyof typeof MARK]} ${c.name}: ${c.detail}`);
    if (c.ok === false && c.fix) lines.push(`      fix: ${c.fix}`);
  }
  const failed = report.checks.filter((c) => c.ok === false).length;
  const skipped = report.checks.filter((c) => c.ok === 'skipped').length;
  const passed = report.checks.length - failed - skipped;
  lines.push('', `${failed ? `✘ ${failed} problem${failed === 1 ? '' : 's'} to fix, ` : '✔ no problems found: '}${passed} passed${skipped ? `, ${skipped} skipped` : ''}`);
  return lines.join('\n');
}
