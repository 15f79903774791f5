/**
 * Back-channel logout delivered again. oidc-provider sends each logout token once, while the user
 * signs out at the OP: an app that was restarting, or whose store stalled, answered 5xx (or nothing)
 * and kept the user signed in, while the OP said "Signed out". A delivery that failed in passing (no
 * answer, 5xx, 429) is tried again after 1, 3, 10, 30 and 60 s, with a new logout token each time,
 * and, for a client whose tokens carry the OP session's `sid` (`backchannel_logout_session_required`),
 * then after 2, 5, 10, 20 and 30 min (about 69 minutes in all: an app down for a deploy or a crash
 * loop still gets it). A token with only `sub` ends every session of the user at the app, those made
 * after the sign-out too (nothing in a fresh token tells them apart), so it is not sent past the first
 * 104 s. A 4xx is final (the app refused the token). What is given up is said with `console.warn`.
 *
 * The retries wait in the store's shared queue when it has one (`redisAdapter()`): every instance
 * takes the due ones, so an instance stopped or killed meanwhile loses none. Otherwise (or while the
 * store cannot take them) they wait in this process.
 */
import { randomBytes } from 'node:crypto';
import debug from 'debug';
import type Provider from 'oidc-provider';
import type { OpStore } from './adapters/types.js';
import { consumedInRequest } from './request-scope.js';
import { warnAtMostHourly } from './hourly-warning.js';

const log = debug('openid-express:op');

const QUEUE = 'backchannel-logout';
const DELAYS_MS = [1, 3, 10, 30, 60, 120, 300, 600, 1_200, 1_800].map((seconds) => seconds * 1_000);
/** Retries of a delivery whose token carries only `sub` (the first 104 s of DELAYS_MS): see above. */
const SUB_ONLY_RETRIES = 5;
/** How often each instance takes the due retries from the shared queue, and how many at once. */
const POLL_MS = 1_000;
const TAKE = 20;
/** Retries waiting in this process at most (each holds a few strings): past it, failures are only warned about. */
const MAX_LOCAL = 10_000;

/** One delivery to try again: the client, the user and OP session it was for, and how many retries came before. */
interface Retry {
  id: string;
  clientId: string;
  sub: string;
  sid: string;
  attempt: number;
  /** The OP's issuer: OPs that share a store namespace by mistake share its queue, and each delivers only its own. */
  iss?: string;
  /** When (ms) another OP first gave it back: one whose issuer no OP serves any more is dropped in the end. */
  foreignSince?: number;
  /** How the last delivery failed: "the app answered 503", or "no answer (…)". */
  last?: string;
}

/** How a delivery failed, for the message of a delivery given up. */
const failureOf = (err: Error): string => {
  const status = (err as { response?: { status?: number } })?.response?.status;
  return status === undefined ? `no answer (${err.message})` : `the app answered ${status}`;
};

interface LogoutClient {
  clientId: string;
  backchannelLogoutUri?: string;
  /** Its logout tokens carry the OP session's `sid` (oidc-provider adds it only then). */
  backchannelLogoutSessionRequired?: boolean;
  backchannelLogout(sub: string, sid: string): Promise<void>;
}

/** True when a failed delivery may succeed later: no answer, 5xx or 429. */
const passing = (err: unknown): boolean => {
  const status = (err as { response?: { status?: number } })?.response?.status;
  return status === undefined || status >= 500 || status === 429;
};

/**
 * Tries failed back-channel logouts of `provider` again (see above), through `store`'s queue when it has one.
 *
 * @example
 * retryBackchannelLogout(provider, store);
 */
export function retryBackchannelLogout(provider: Provider, store: OpStore, delays: readonly number[] = DELAYS_MS): void {
  let local = 0;
  const warn = (r: Pick<Retry, 'clientId'>, uri: string | undefined, what: string, todo: string) =>
    console.warn(`op(): the back-channel logout to client "${r.clientId}" (${uri ?? 'its backchannel_logout_uri'}) ${what}. That app may still have the user signed in: ${todo}.`);
  // the app answered (5xx, 429): what to look at is the app, not the network
  const giveUp = (r: Pick<Retry, 'clientId' | 'last'>, uri: string | undefined, why: string) =>
    warn(r, uri, `was not delivered: ${why}${r.last ? ` (last: ${r.last})` : ''}`, r.last?.startsWith('the app answered')
      ? 'look in its log for why it answered so (with @openid-express/rp, a 503 store_unavailable: its session store was down or full)'
      : 'check that it is reachable from the OP');
  // a 4xx: the app got the token and refused it; what it said is what to fix (not the network)
  const refused = (r: Pick<Retry, 'clientId'>, uri: string | undefined, err: Error) => void answerOf(err).then((said) =>
    warn(r, uri, `was refused by the app: ${err.message}${said ? ` (${said})` : ''}`,
      'fix what its answer names (a token refused for its time, "iat" or "exp", means the clocks of the OP and the app differ: keep both in time with NTP)'));

  const later = (r: Retry, client: LogoutClient): void => {
    const uri = client.backchannelLogoutUri;
    const schedule = client.backchannelLogoutSessionRequired ? delays : delays.slice(0, SUB_ONLY_RETRIES);
    if (r.attempt >= schedule.length) {
      return giveUp(r, uri, `no success after ${r.attempt + 1} attempts over ${duration(schedule.reduce((a, b) => a + b, 0))}`);
    }
    const dueAt = Date.now() + schedule[r.attempt]!;
    if (!store.schedule) return inProcess(r, uri, dueAt);
    const kept = store.schedule(QUEUE, JSON.stringify(r), dueAt).catch((err: Error) => {
      log('back-channel logout retry kept in this process (the store did not take it: %s)', err.message);
      inProcess(r, uri, dueAt);
    });
    // the sign-out's answer waits for it: an instance killed once it has answered leaves the retry to the others
    consumedInRequest.getStore()?.settle.push(() => kept.then(() => true));
  };

  const inProcess = (r: Retry, uri: string | undefined, dueAt: number): void => {
    if (local >= MAX_LOCAL) return giveUp(r, uri, `${MAX_LOCAL} deliveries are already waiting to be tried again`);
    local += 1;
    setTimeout(() => {
      local -= 1;
      void deliver(r);
    }, Math.max(0, dueAt - Date.now())).unref();
  };

  const deliver = async (r: Retry): Promise<void> => {
    const client = (await provider.Client.find(r.clientId).catch(() => undefined)) as unknown as LogoutClient | undefined;
    if (!client?.backchannelLogoutUri) return log('back-channel logout retry dropped: client %s is gone or has no back channel now', r.clientId);
    await client.backchannelLogout(r.sub, r.sid).then(
      () => log('back-channel logout to client %s delivered on attempt %d', r.clientId, r.attempt + 2),
      (err: Error) => (passing(err) ? later({ ...r, attempt: r.attempt + 1, last: failureOf(err), foreignSince: undefined }, client) : refused(r, client.backchannelLogoutUri, err)),
    );
  };

  provider.on('backchannel.error', (_ctx, err, client, sub, sid) => {
    log('back-channel logout to client %s failed: %s', client.clientId, err.message);
    const uri = (client as unknown as LogoutClient).backchannelLogoutUri;
    if (!passing(err)) return refused({ clientId: client.clientId }, uri, err);
    later({ id: randomBytes(9).toString('base64url'), clientId: client.clientId, sub, sid, attempt: 0, iss: provider.issuer, last: failureOf(err) }, client as unknown as LogoutClient);
  });

  if (store.takeDue) pollSharedQueue(store, provider, (r) => deliver(r), delays.reduce((a, b) => a + b, 0));
}

/** `ms` for a reader: "45 s", "69 min". */
const duration = (ms: number): string => (ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`);

/** The longest start of a refused delivery's answer read (an app's error page, or a hostile one: never all of it). */
const ANSWER_MAX = 4096;

/** The app's answer to a refused delivery, short: its `error` and `error_description` (JSON), or the start of its text; '' when unreadable within 2 s. */
async function answerOf(err: Error): Promise<string> {
  const response = (err as { response?: Response }).response;
  if (!response?.body || typeof response.body.getReader !== 'function') return '';
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(''), 2000)));
  const text = await Promise.race([startOf(response.body, ANSWER_MAX).catch(() => ''), late]).finally(() => clearTimeout(timer));
  try {
    const { error, error_description: description } = JSON.parse(text) as { error?: unknown; error_description?: unknown };
    if (typeof error === 'string') return `${error}${typeof description === 'string' ? `: ${description}` : ''}`.slice(0, 500);
  } catch { /* not JSON */ }
  // (a tag is "<", no "<" or ">", then ">": linear on any text, also on many "<" without a ">")
  return text.replace(/<[^<>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
}

/** The first `max` bytes of `body` as text; the rest is not read (the stream is cancelled). */
async function startOf(body: ReadableStream<Uint8Array>, max: number): Promise<string> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < max) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8');
}

const DELIVER = Symbol('delivers a back-channel logout retry taken from the shared queue');

/**
 * Every `POLL_MS`, takes the due retries from the shared queue (each taken by one instance) and
 * delivers them through `provider`. The timer holds the provider weakly: an op() the app dropped (a
 * test, a tenant removed) stops polling once it is collected, instead of polling and being kept for
 * the life of the process.
 */
/** How long another OP's retry waits before it is offered again (its own OP takes it meanwhile). */
const FOREIGN_DELAY_MS = 5_000;

/**
 * Another OP's retry (OPs sharing a store namespace by mistake): given back a little later for its own
 * OP to take, and dropped, with a warning, once no OP of its issuer took it for as long as retries last
 * (`horizon`): a tenant removed, or an issuer changed, would otherwise leave it offered for ever.
 */
function giveBack(store: OpStore, r: Retry, horizon: number): Promise<void> | void {
  const since = r.foreignSince ?? Date.now();
  if (Date.now() - since <= horizon) return store.schedule!(QUEUE, JSON.stringify({ ...r, foreignSince: since }), Date.now() + Math.min(FOREIGN_DELAY_MS, horizon));
  const iss = String(r.iss).slice(0, 200);
  log('back-channel logout retry of issuer %s dropped: no OP of that issuer took it', JSON.stringify(iss));
  warnAtMostHourly(`orphaned-retries ${iss}`, `back-channel logout retries of the OP at ${JSON.stringify(iss)} (client "${r.clientId}" among them) were dropped `
    + `from the shared queue: no OP of that issuer took them for ${duration(horizon)} (a tenant removed, its issuer changed, or OPs sharing one store `
    + 'prefix). Those apps may still have their users signed in.');
}

function pollSharedQueue(store: OpStore, provider: Provider, deliver: (r: Retry) => Promise<void>, horizon: number): void {
  (provider as unknown as Record<symbol, unknown>)[DELIVER] = deliver;
  const owner = new WeakRef(provider);
  let busy = false;
  const timer = setInterval(() => {
    const live = owner.deref() as unknown as Record<symbol, (r: Retry) => Promise<void>> | undefined;
    if (!live) return clearInterval(timer);
    if (busy) return;
    busy = true;
    const send = live[DELIVER]!;
    store.takeDue!(QUEUE, Date.now(), TAKE)
      .then((items) => Promise.all(items.map((item) => {
        let r: Retry;
        try {
          r = JSON.parse(item) as Retry;
        } catch {
          return log('back-channel logout retry dropped: unreadable queue item');
        }
        // another OP's (its client of the same id is not this OP's): given back for that OP to take
        if (r.iss !== undefined && r.iss !== (live as unknown as Provider).issuer) return giveBack(store, r, horizon);
        return send(r).catch((err: Error) => log('back-channel logout retry failed: %s', err.message));
      })))
      .catch((err: Error) => log('back-channel logout retries not taken this time: %s', err.message))
      .finally(() => {
        busy = false;
      });
  }, POLL_MS).unref();
}
