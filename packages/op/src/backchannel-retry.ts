/**
 * Back-channel logout delivered again. oidc-provider sends each logout token once, while the user
 * signs out at the OP: an app that was restarting, or whose store stalled, answered 5xx (or nothing)
 * and kept the user signed in, while the OP said "Signed out". A delivery that failed in passing (no
 * answer, 5xx, 429) is tried again after 1, 3, 10, 30 and 60 s, with a new logout token each time; a
 * 4xx is final (the app refused the token). The retries live in this process: an instance stopped
 * within those two minutes drops its pending ones (what is given up is said with `console.warn`).
 */
import debug from 'debug';
import type Provider from 'oidc-provider';

const log = debug('openid-express:op');

const DELAYS_MS = [1_000, 3_000, 10_000, 30_000, 60_000];
/** Retries waiting at most at once (each holds a client and two strings): past it, failures are only warned about. */
const MAX_PENDING = 10_000;

interface LogoutClient {
  clientId: string;
  backchannelLogoutUri?: string;
  backchannelLogout(sub: string, sid: string): Promise<void>;
}

/** True when a failed delivery may succeed later: no answer, 5xx or 429. */
const passing = (err: unknown): boolean => {
  const status = (err as { response?: { status?: number } })?.response?.status;
  return status === undefined || status >= 500 || status === 429;
};

/**
 * Tries failed back-channel logouts of `provider` again (see above).
 *
 * @example
 * retryBackchannelLogout(provider);
 */
export function retryBackchannelLogout(provider: Provider, delays: readonly number[] = DELAYS_MS): void {
  let pending = 0;
  const giveUp = (client: LogoutClient, why: string) =>
    console.warn(`op(): the back-channel logout to client "${client.clientId}" (${client.backchannelLogoutUri}) was not delivered: ${why}. `
      + 'That app may still have the user signed in: check that it is reachable from the OP.');
  const retry = (client: LogoutClient, sub: string, sid: string, attempt: number): void => {
    if (attempt >= delays.length) return giveUp(client, `no success after ${attempt + 1} attempts over ${Math.round(delays.reduce((a, b) => a + b, 0) / 1000)} s`);
    if (pending >= MAX_PENDING) return giveUp(client, `${MAX_PENDING} deliveries are already waiting to be tried again`);
    pending += 1;
    setTimeout(() => {
      pending -= 1;
      client.backchannelLogout(sub, sid).then(
        () => log('back-channel logout to client %s delivered on attempt %d', client.clientId, attempt + 2),
        (err: Error) => (passing(err) ? retry(client, sub, sid, attempt + 1) : giveUp(client, err.message)),
      );
    }, delays[attempt]).unref();
  };
  provider.on('backchannel.error', (_ctx, err, client, sub, sid) => {
    log('back-channel logout to client %s failed: %s', client.clientId, err.message);
    if (passing(err)) retry(client as unknown as LogoutClient, sub, sid, 0);
    else giveUp(client as unknown as LogoutClient, err.message);
  });
}
