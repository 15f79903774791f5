import { createHash } from 'node:crypto';
import debug from 'debug';
import express, { type NextFunction, type Request, type Response } from 'express';
import Provider, { errors } from 'oidc-provider';
import type { AccountStore } from './accounts.js';
import type { OpStore } from './adapters/types.js';
import type { AuthenticationFailure, AuthenticationSuccess, Authenticator } from './authenticators/authenticator.js';
import { clientIp } from './client-ip.js';
import { cookieOf } from './request-cookie.js';
import { pageHeaders, sendErrorPage, sendMethodNotAllowed, sendStoreUnavailable } from './error-page.js';
import { appCall } from './bounded-store.js';
import { OpError } from './errors.js';
import { finishInteraction } from './finish.js';
import { consentItems, finishConsent } from './grant.js';
import { csrfMatches, type InteractionState, type InteractionStates } from './interaction-state.js';
import { isStoreUnavailable } from './store-unavailable.js';
import { giveBackOnOutage, throttleKeyOf, type Throttle } from './throttle.js';
import { renderPage, type Views } from './views/render.js';
import { withoutBidiControls, safeHref } from './views/escape.js';
import { formBytes } from './logout-csrf.js';

const log = debug('openid-express:op');

/** What the interaction routes need. */
export interface InteractionDeps {
  provider: Provider;
  accounts: AccountStore;
  authenticators: Authenticator[];
  views: Views;
  throttle: Throttle;
  firstParty: ReadonlySet<string>;
  /** The router's mount path ('' at the root), for form actions. */
  mountPath: string;
  /** CSRF token and attempts per interaction, in the `adapter` store. */
  states: InteractionStates;
  /** op()'s `trustProxy`: whose address login throttling counts (see clientIp). */
  trustProxy: boolean;
  /** op()'s `homeUri`: the way onward from an error page when no client is known (none: the page says to go back to the app). */
  homeUri?: string;
  /** op()'s `storeTimeout`: how long an authenticator's `verify()` may take before the login answers 503. */
  storeTimeout: number;
  /** The `adapter` store: the one-time claims of callbacks from another OP (`completeOnce`). */
  claims: OpStore;
}

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;
type Interaction = InstanceType<Provider['Interaction']>;

/** The steps at which someone may sign in: the login, and the consent (to switch to another account). */
const SIGN_IN_STEPS: ReadonlySet<string> = new Set(['login', 'consent']);
const GENERIC_FAILURE = 'The login name or password is incorrect.';
const THROTTLED = 'Too many failed attempts. Wait a few minutes, then try again.';
const BUSY = 'Too many sign-ins from your network at this moment. Try again in a few seconds.';
const ACCOUNT_BUSY = 'Too many sign-ins to this account at this moment. Try again in a few seconds.';
const EXPIRED = new OpError('interaction_expired', 400,
  'This sign-in has expired or was already completed. Go back to the application and sign in again.');

/** Posted fields as strings; repeated or nested fields are dropped. */
function fields(body: unknown): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  const bytes = formBytes(body);
  if (bytes) {
    for (const [k, v] of bytes) out[k] ??= v;
  } else if (body && typeof body === 'object') {
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out[k] = v;
  }
  return out;
}

const COOKIES_MISSING_MESSAGE =
  'Your browser did not send back the cookie this sign-in needs, so it cannot go on. Allow cookies for this site (or finish the sign-in in the browser where you started it), then go back to the application and sign in again.';

/** An error met while interaction `interaction` is known (its page's way back needs no second read). */
class InteractionError extends OpError {
  constructor(code: OpError['code'], status: number, message: string, readonly interaction: Interaction) {
    super(code, status, message);
  }
}

async function details(deps: InteractionDeps, req: Request, res: Response): Promise<Details> {
  try {
    const d = await deps.provider.interactionDetails(req, res);
    if (d.uid !== req.params.uid) throw EXPIRED;
    return d;
  } catch (err) {
    if (err instanceof errors.SessionNotFound) throw await notFoundReason(deps, req);
    throw err;
  }
}

/**
 * Why this browser's sign-in was not found: an interaction that is still there but whose cookie the
 * browser did not send (cookies blocked, another browser) is not "expired", and saying so would
 * send the user round the same loop.
 */
async function notFoundReason(deps: InteractionDeps, req: Request): Promise<OpError> {
  // the interaction cookie's name as configured (`provider: { cookies: { names } }` renames it, e.g. for two OPs on one host name)
  const name = deps.provider.cookieName('interaction');
  if (cookieOf(req, name) !== undefined) return EXPIRED;
  const live = await deps.provider.Interaction.find(String(req.params.uid)).catch(() => undefined);
  return live ? new InteractionError('cookies_missing', 400, COOKIES_MISSING_MESSAGE, live) : EXPIRED;
}

/**
 * A form posted again after its step was decided (a double click, a retry after a lost answer): the
 * first answer's way on, the interaction's resume, not a false "form expired" page. Nothing changes.
 */
function alreadyDecided(d: Details, res: Response): boolean {
  if (!d.result) return false;
  log('form posted again after the step was decided: resuming');
  res.redirect(303, d.returnTo);
  return true;
}

/**
 * The way back from an error page: the client of interaction `uid` (its `client_uri`) when known;
 * for a sign-in that is gone (finished: the user went Back to it), the one client this browser's OP
 * session has signed in to, if there is one; else `homeUri`.
 */
async function wayBack(
  deps: InteractionDeps, uid: string | undefined, known?: Interaction, browser?: { req: Request; res: Response },
): Promise<{ backUrl?: string; backLabel?: string; clientName?: string }> {
  const interaction = known ?? (uid ? await deps.provider.Interaction.find(uid).catch(() => undefined) : undefined);
  const clientId = interaction ? String(interaction.params.client_id) : browser && await onlySignedInClient(deps, browser.req, browser.res).catch(() => undefined);
  const client = clientId ? await deps.provider.Client.find(clientId).catch(() => undefined) : undefined;
  const clientName = client ? client.clientName ?? client.clientId : undefined;
  const backUrl = safeHref(client?.clientUri);
  if (clientName && backUrl) return { backUrl, backLabel: `Back to ${withoutBidiControls(clientName)}`, clientName };
  if (!deps.homeUri) return clientName ? { clientName } : {};
  return { backUrl: deps.homeUri, backLabel: 'Go to the start page', ...(clientName ? { clientName } : {}) };
}

/**
 * The client this browser's OP session is signed in to, when it is exactly one (read on an error
 * page's path only), by the session cookie as oidc-provider reads it (signed).
 */
async function onlySignedInClient(deps: InteractionDeps, req: Request, res: Response): Promise<string | undefined> {
  // read as oidc-provider reads it: signed with the OP's cookie keys (review-55 F2: a bare id named the client)
  const id = deps.provider.createContext(req, res).cookies.get(deps.provider.cookieName('session'), { signed: true });
  if (!id || id.length > 100) return undefined;
  const session = await deps.provider.Session.find(id).catch(() => undefined);
  const clients = Object.keys(session?.authorizations ?? {});
  return session?.accountId && clients.length === 1 ? clients[0] : undefined;
}

/**
 * The form state of the interaction in the URL, read at the same time as oidc-provider reads the
 * interaction (one round trip to the store instead of two, one after the other). Awaited only where
 * it is used, after the interaction was found; a failure meanwhile is not left unhandled.
 */
function formStateOf(deps: InteractionDeps, req: Request): Promise<InteractionState | undefined> {
  const found = deps.states.existing(String(req.params.uid));
  found.catch(() => undefined);
  return found;
}

async function checkCsrf(found: Promise<InteractionState | undefined>, req: Request): Promise<InteractionState> {
  const state = await found;
  const posted = fields(req.body).csrf;
  if (!state || !csrfMatches(state.csrf, posted)) {
    // a form without the field at all is most often a custom view that left it out: say so to the developer
    if (state && posted === undefined) {
      log('a form posted to %s had no "csrf" field: a custom view must include <input type="hidden" name="csrf" value="${props.csrf}"> in each form (see README, Views)', req.path);
    }
    throw new OpError('csrf_invalid', 403, 'This form has expired or did not come from this site. Nothing was changed; go back and try again.');
  }
  return state;
}

/** What the client asked about presentation: languages (`ui_locales`) and `display`, for the views. */
function presentation(d: Details): { uiLocales: string[]; display?: string } {
  const locales = typeof d.params.ui_locales === 'string' ? d.params.ui_locales.split(' ').filter(Boolean) : [];
  return { uiLocales: locales, display: typeof d.params.display === 'string' ? d.params.display : undefined };
}

async function clientOf(deps: InteractionDeps, d: Details) {
  const client = await deps.provider.Client.find(String(d.params.client_id));
  return { name: client?.clientName ?? String(d.params.client_id), uri: client?.clientUri, logo: client?.logoUri, client };
}

async function showLogin(
  deps: InteractionDeps, req: Request, res: Response, d: Details, status = 200, error?: string, found?: Promise<InteractionState | undefined>,
) {
  const state = await deps.states.stateFor(d.uid, d.exp, found);
  const { name, uri, logo } = await clientOf(deps, d);
  const base = `${deps.mountPath}/interaction/${d.uid}`;
  const loginHint = typeof d.params.login_hint === 'string' ? d.params.login_hint : undefined;
  const html = await renderPage(req, deps.views, 'login', {
    // a failed try says so in the title too, the first thing a screen reader reads of the page again
    title: error ? 'Error: Sign in' : 'Sign in', clientName: name, clientUri: uri, logoUri: logo, ...presentation(d), action: `${base}/login`, abortAction: `${base}/abort`,
    csrf: state.csrf, error,
    authenticators: deps.authenticators.map((a, i) => ({
      id: a.id, label: a.label, submitLabel: a.submitLabel ?? 'Sign in',
      fields: a.fields({
        loginHint, lastLogin: a.id === state.authenticator ? state.lastLogin : undefined, autofocus: i === 0,
        ...(error && (a.id === state.authenticator || deps.authenticators.length === 1) ? { errorId: 'login-error' } : {}),
      }),
    })),
  });
  pageHeaders(res);
  res.status(status).type('html').send(html);
}

/** How the consent screen names who is signed in: email, username or name, else the account id. */
async function accountLabel(accounts: AccountStore, id: string): Promise<string> {
  const claims = await accounts.claims(id, 'openid email profile');
  const label = [claims.email, claims.preferred_username, claims.name].find((v) => typeof v === 'string' && v.trim());
  return (label as string | undefined) ?? id;
}

async function show(deps: InteractionDeps, req: Request, res: Response) {
  const found = formStateOf(deps, req);
  const d = await details(deps, req, res);
  if (d.prompt.name === 'login') return showLogin(deps, req, res, d, 200, undefined, found);
  if (d.prompt.name !== 'consent') throw new OpError('wrong_prompt', 400, `Unsupported step "${d.prompt.name}".`);
  const { name, uri, logo, client } = await clientOf(deps, d);
  if (deps.firstParty.has(String(d.params.client_id))) return finishConsent(deps.provider, req, res, d);
  const state = await deps.states.stateFor(d.uid, d.exp, found);
  const base = `${deps.mountPath}/interaction/${d.uid}`;
  const accountId = d.session?.accountId;
  const html = await renderPage(req, deps.views, 'consent', {
    title: 'Allow access?', clientName: name, clientUri: uri, logoUri: logo, ...presentation(d), policyUri: client?.policyUri, tosUri: client?.tosUri,
    action: `${base}/confirm`, abortAction: `${base}/abort`, csrf: state.csrf, ...consentItems(d),
    account: accountId ? await accountLabel(deps.accounts, accountId) : undefined,
    switchAccountUrl: `${base}/login`,
  });
  pageHeaders(res);
  res.status(200).type('html').send(html);
}

/**
 * The login form of an interaction, also while it waits for consent: "Use another account" on the
 * consent screen. Signing in as someone else there ends the current OP session (oidc-provider
 * signs the first account out, then resumes) and the consent screen comes back for the new account.
 */
async function showLoginForm(deps: InteractionDeps, req: Request, res: Response) {
  const d = await details(deps, req, res);
  if (!SIGN_IN_STEPS.has(d.prompt.name)) throw new OpError('wrong_prompt', 400, 'This step is not a sign-in.');
  return showLogin(deps, req, res, d);
}

async function submitLogin(deps: InteractionDeps, req: Request, res: Response) {
  const found = formStateOf(deps, req);
  const d = await details(deps, req, res);
  if (alreadyDecided(d, res)) return;
  const state = await checkCsrf(found, req);
  if (!SIGN_IN_STEPS.has(d.prompt.name)) throw new OpError('wrong_prompt', 400, 'This step is not a sign-in.');
  const body = fields(req.body);
  const auth = deps.authenticators.find((a) => a.id === body.authenticator);
  if (!auth) throw new OpError('authenticator_unknown', 400, 'Unknown sign-in method.');
  const typed = auth.throttleKey(body);
  const login = await throttleKeyOf(deps.accounts, typed);
  const ip = clientIp(req, deps.trustProxy);
  state.authenticator = auth.id;
  state.lastLogin = typed?.slice(0, 256);
  const verdict = await deps.throttle.attempt(login, ip);
  if (verdict !== 'ok') {
    await deps.states.save(d.uid, state, d.exp);
    log('login throttled (authenticator %s, %s)', auth.id, verdict);
    res.set('Retry-After', String(verdict === 'locked' ? deps.throttle.windowSeconds : deps.throttle.busySeconds));
    return showLogin(deps, req, res, d, 429, verdict === 'locked' ? THROTTLED : verdict === 'busy' ? BUSY : ACCOUNT_BUSY);
  }
  // the app's own code (a directory, a code sent by email): one that never answers is a 503, not a login that hangs
  const result = await appCall(() => auth.verify({ uid: d.uid, body, req, res, accounts: deps.accounts }), deps.storeTimeout,
    `the authenticator "${auth.id}" did not answer within ${deps.storeTimeout} ms (its verify(); storeTimeout)`, `the authenticator "${auth.id}": its verify()`)
    .catch(giveBackOnOutage(deps.throttle, login, ip));
  if (result.ok === 'redirect') {
    // decided elsewhere (completeLogin counts a refusal there): this attempt is given back
    await deps.throttle.giveBack(login, ip);
    log('login continues elsewhere (authenticator %s)', auth.id);
    return res.redirect(303, result.url);
  }
  // (only an other provider that is down; any other failure of verify(), whatever it says, is counted)
  if (!result.ok && result.reason === 'unavailable') {
    await deps.throttle.giveBack(login, ip);
    return failedElsewhere(deps, req, res, d.uid, result);
  }
  if (!result.ok) {
    state.attempts += 1;
    await Promise.all([deps.throttle.failed(login, ip), deps.states.save(d.uid, state, d.exp)]);
    log('login failed (authenticator %s, attempt %d)', auth.id, state.attempts);
    return showLogin(deps, req, res, d, 401, GENERIC_FAILURE);
  }
  await Promise.all([deps.throttle.succeed(login, ip), renewSession(req)]);
  log('login succeeded (authenticator %s)', auth.id);
  await finishLogin(deps, req, res, d, result);
  await dropState(deps, d.uid);
}

/**
 * Forgets a form's CSRF state once its step is decided, and only then: a store failure before that
 * is a 503 whose "try again" must find the form still valid (the interaction's result, once saved,
 * already makes a repeat go on instead: `alreadyDecided`). Best effort: the answer is out.
 */
async function dropState(deps: InteractionDeps, uid: string): Promise<void> {
  await deps.states.drop(uid).catch((err: unknown) => log('form state not dropped: %s', (err as Error)?.message));
}

async function confirm(deps: InteractionDeps, req: Request, res: Response) {
  const found = formStateOf(deps, req);
  const d = await details(deps, req, res);
  if (alreadyDecided(d, res)) return;
  await checkCsrf(found, req);
  if (d.prompt.name !== 'consent') throw new OpError('wrong_prompt', 400, 'This step is not a consent.');
  await finishConsent(deps.provider, req, res, d);
  await dropState(deps, d.uid);
}

async function abort(deps: InteractionDeps, req: Request, res: Response) {
  const found = formStateOf(deps, req);
  const d = await details(deps, req, res);
  if (alreadyDecided(d, res)) return;
  await checkCsrf(found, req);
  await finishInteraction(deps.provider, req, res, d, { error: 'access_denied', error_description: 'End-User aborted interaction' });
  await dropState(deps, d.uid);
}

/**
 * Ends the login step of interaction `uid` without its cookie (the browser comes back from another
 * site): records the result on the Interaction and resumes the authorization.
 */
export async function completeLogin(
  deps: InteractionDeps, req: Request, res: Response, uid: string | undefined, result: AuthenticationSuccess | AuthenticationFailure,
): Promise<void> {
  const interaction = uid ? await deps.provider.Interaction.find(uid) : undefined;
  if (!interaction || !SIGN_IN_STEPS.has(interaction.prompt.name)) return sendOpError(deps, req, res, EXPIRED, uid);
  if (!result.ok) {
    // the user said no there, or the other provider is down: no guess was made, nothing is counted (an
    // outage would otherwise lock everyone behind one address out of every way to sign in)
    if (result.reason !== 'cancelled' && result.reason !== 'unavailable') await deps.throttle.fail(clientIp(req, deps.trustProxy));
    return failedElsewhere(deps, req, res, String(uid), result);
  }
  await renewSession(req);
  log('login succeeded elsewhere');
  await finishLogin(deps, req, res, interaction, result);
  await dropState(deps, String(uid));
}

/**
 * How long the first copy of a callback holds it: a copy within that time follows it (a claim is never
 * given back, so a copy never redeems the other OP's code again; an instance that died mid-way leaves
 * the sign-in to be started again once it lapses). A copy waits up to COPY_WAIT_MS, asking every COPY_POLL_MS.
 */
const CALLBACK_CLAIM_SECONDS = 30;
const COPY_WAIT_MS = 10_000;
const COPY_POLL_MS = 100;
/** How a callback's first copy failed, for the copies (a sign-in they read on the interaction itself). */
const FAILURES = ['refused', 'cancelled', 'unavailable'] as const;
type Failure = (typeof FAILURES)[number];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `completeLogin` once per callback `once.key` across every instance (AuthenticatorMount's
 * `completeOnce`): the same callback arriving twice (a reload while it is answered, a load balancer
 * sending it again) had both copies redeem the other OP's code, which it refuses the second time and
 * then revokes what it issued (RFC 6749 §4.1.2): "Sign-in failed" on one copy or both, each counted
 * against the address. The first copy claims it (`increment`, atomic in every store); the others
 * follow it and count nothing.
 */
export async function completeOnce(
  deps: InteractionDeps, req: Request, res: Response, once: { key: string; uid: string; provider?: string | undefined },
  outcome: () => Promise<AuthenticationSuccess | AuthenticationFailure>,
): Promise<void> {
  const claim = `openid-express:callback:${createHash('sha256').update(once.key).digest('base64url')}`;
  if (await deps.claims.increment(claim, CALLBACK_CLAIM_SECONDS) > 1) return followFirstCopy(deps, req, res, once, claim);
  // a request that throws tells its copies "try again later", as its own error page does
  let ended: Failure | 'signed-in' = 'unavailable';
  try {
    const result = await outcome();
    await completeLogin(deps, req, res, once.uid, result);
    ended = result.ok ? 'signed-in' : result.reason ?? 'refused';
  } finally {
    if (ended !== 'signed-in') {
      await deps.claims.increment(`${claim}:${ended}`, CALLBACK_CLAIM_SECONDS)
        .catch((err: unknown) => log('a callback\'s outcome was not recorded for its copies (they answer 503): %s', (err as Error)?.message));
    }
  }
}

/** A copy of a callback: answers as its first copy ended (the interaction's resume once it signed in), counting nothing. */
async function followFirstCopy(
  deps: InteractionDeps, req: Request, res: Response, once: { uid: string; provider?: string | undefined }, claim: string,
): Promise<void> {
  log('a callback arrived again while (or after) its first copy was answered: following that one');
  const deadline = Date.now() + COPY_WAIT_MS;
  for (;;) {
    const [interaction, ...failed] = await Promise.all([
      deps.provider.Interaction.find(once.uid), ...FAILURES.map((how) => deps.claims.count(`${claim}:${how}`)),
    ]);
    if (!interaction) return sendOpError(deps, req, res, EXPIRED, once.uid);
    if (interaction.result) return void res.redirect(303, interaction.returnTo);
    const how = FAILURES.find((_, i) => failed[i]! > 0);
    if (how) return failedElsewhere(deps, req, res, once.uid, { ok: false, reason: how === 'refused' ? undefined : how, provider: once.provider });
    if (Date.now() > deadline) {
      res.set('Retry-After', '2');
      return sendErrorPage(req, res, deps.views, {
        status: 503, code: 'upstream_unavailable', title: 'Briefly unavailable', backUrl: `${deps.mountPath}/interaction/${once.uid}`,
        backLabel: 'Back to the sign-in page',
        message: 'This sign-in is still being finished by an earlier copy of this page (it arrived twice). Try again in a moment.',
      });
    }
    await sleep(COPY_POLL_MS);
  }
}

/**
 * The page of a sign-in elsewhere that did not succeed, saying which way: the user cancelled there
 * (400), the other provider could not answer (503 with `Retry-After`), or it was refused (401). Each
 * leads back to the sign-in page.
 */
function failedElsewhere(deps: InteractionDeps, req: Request, res: Response, uid: string, result: AuthenticationFailure): Promise<void> {
  const backUrl = `${deps.mountPath}/interaction/${uid}`;
  const other = result.provider ?? 'the other provider';
  if (result.reason === 'cancelled') {
    return sendErrorPage(req, res, deps.views, {
      status: 400, code: 'login_cancelled', title: 'Sign-in cancelled', backUrl, backLabel: 'Back to the sign-in page',
      message: `Signing in with ${other} was cancelled there. Go back to try again or to choose another way to sign in.`,
    });
  }
  if (result.reason === 'unavailable') {
    res.set('Retry-After', '5');
    return sendErrorPage(req, res, deps.views, {
      status: 503, code: 'upstream_unavailable', title: 'Briefly unavailable', backUrl, backLabel: 'Back to the sign-in page',
      message: `Signing in with ${other} is not possible right now: it could not be reached, or answered with an error of its own. Go back and try again in a moment, or choose another way to sign in.`,
    });
  }
  return sendErrorPage(req, res, deps.views, {
    status: 401, code: 'login_failed', title: 'Sign-in failed', backUrl,
    message: `Signing in with ${other} did not succeed. Go back and try again, or choose another way to sign in.`,
  });
}

/**
 * Ends the login step with the account signed in, or, when the client made `acr` an essential claim
 * (`claims={"id_token":{"acr":{"essential":true,"values":[…]}}}`) and this sign-in's `acr` is none of
 * them, with `unmet_authentication_requirements` back to the client: OIDC Core §5.5.1.1 treats that
 * as a failed authentication, and signing the user in would only show the login form again, forever.
 */
async function finishLogin(deps: InteractionDeps, req: Request, res: Response, interaction: Details, result: AuthenticationSuccess): Promise<void> {
  const { reasons, details: asked } = interaction.prompt;
  if (reasons.includes('essential_acrs') || reasons.includes('essential_acr')) {
    const acr = (asked as { acr?: { value?: unknown; values?: unknown } }).acr;
    const wanted = Array.isArray(acr?.values) ? acr.values.map(String) : acr?.value !== undefined ? [String(acr.value)] : [];
    if (result.acr === undefined || !wanted.includes(result.acr)) {
      log('login does not meet the essential acr (got %s)', result.acr ?? 'none');
      return finishInteraction(deps.provider, req, res, interaction, {
        error: 'unmet_authentication_requirements',
        error_description: 'the sign-in did not reach the authentication context class (acr) the client requires',
      });
    }
  }
  await finishInteraction(deps.provider, req, res, interaction, { login: { accountId: result.accountId, amr: result.amr, acr: result.acr } });
}

/**
 * A new express-session id once the user has signed in (no session fixation: a cookie planted
 * before the login is not the one in use after it). Nothing in it is needed afterwards: the
 * interaction's own state lives in the store.
 */
function renewSession(req: Request): Promise<void> {
  // a session made in this very request was never in anyone else's hands: renewing it would only cost a write
  if (!req.session || !(req.headers.cookie ?? '').includes(encodeURIComponent(`s:${req.sessionID}.`))) return Promise.resolve();
  return new Promise((resolve, reject) => req.session.regenerate((err: unknown) => (err ? reject(err) : resolve())));
}

type Handler = (deps: InteractionDeps, req: Request, res: Response) => Promise<void>;

/** An OpError's page, with the way back to the client of interaction `uid` (or `homeUri`). */
async function sendOpError(deps: InteractionDeps, req: Request, res: Response, err: OpError, uid: string | undefined): Promise<void> {
  const back = await wayBack(deps, uid, err instanceof InteractionError ? err.interaction : undefined, err === EXPIRED ? { req, res } : undefined);
  return sendErrorPage(req, res, deps.views, { status: err.status, code: err.code, message: err.message, ...back });
}

/**
 * The login / consent / abort routes under `/interaction/:uid`. Every POST checks the CSRF token
 * kept in the store for that interaction before anything else changes. A store that is down gets
 * the 503 `store_unavailable` page.
 */
export function interactionRoutes(deps: InteractionDeps, session: express.RequestHandler): express.Router & { wrongMethods: express.Router } {
  const router = express.Router();
  const parse = express.urlencoded({ extended: false, limit: '16kb' });
  const wrap = (h: Handler) => (req: Request, res: Response, next: NextFunction) => {
    h(deps, req, res).catch((err: unknown) => {
      if (res.headersSent) return next(err);
      if (err instanceof OpError) return sendOpError(deps, req, res, err, req.params.uid === undefined ? undefined : String(req.params.uid));
      if (isStoreUnavailable(err)) return sendStoreUnavailable(req, res, deps.views, err);
      log('interaction error: %s', err instanceof Error ? err.message : String(err));
      console.error(`op(): ${req.method} ${req.baseUrl}${req.path} failed (500 server_error):`, err);
      return sendErrorPage(req, res, deps.views, { status: 500, code: 'server_error', message: 'The sign-in could not be completed. Try again later.' });
    });
  };
  // each path's methods, as its routes are added: the 405s below list them
  const methods = new Map<string, string[]>();
  const route = (method: 'get' | 'post', path: string, ...handlers: express.RequestHandler[]): void => {
    methods.set(path, [...(methods.get(path) ?? []), method.toUpperCase()]);
    router[method](path, ...handlers);
  };
  // mounted at /interaction; only the login POST runs the browser session (an authenticator's verify() may keep state there: upstream does)
  route('get', '/:uid', wrap(show));
  route('get', '/:uid/login', wrap(showLoginForm));
  route('post', '/:uid/login', session, parse, wrap(submitLogin));
  route('post', '/:uid/confirm', parse, wrap(confirm));
  route('post', '/:uid/abort', parse, wrap(abort));
  // another method is 405 with Allow, OPTIONS 204, as at op()'s other endpoints (before: 404, and Express's OPTIONS 200);
  // a router of its own, mounted after the authenticators' routes (`/interaction/saml-acs` is one of theirs, not a uid)
  // (OPTIONS here: Express answers it itself, 200, at the end of a router whose paths matched)
  const wrongMethods = express.Router();
  for (const [path, list] of methods) {
    const allow = [...list, ...(list.includes('GET') ? ['HEAD'] : []), 'OPTIONS'].join(', ');
    const answer: express.RequestHandler = (req, res, next) => void sendMethodNotAllowed(req, res, deps.views, allow).catch(next);
    router.options(path, answer);
    wrongMethods.all(path, answer);
  }
  return Object.assign(router, { wrongMethods });
}
