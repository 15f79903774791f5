import type { Client } from 'oidc-provider';
import { withoutBidiControls, safeHref } from './views/escape.js';
import type { ErrorViewProps } from './views/error.js';

type Words = { title: string; message: (app: string) => string };

const DECLINED: Words = {
  title: 'Access was not given',
  message: (app) => `You chose not to let ${app} use your account, so nothing was shared with it.`,
};
const SIGN_IN_NEEDED: Words = {
  title: 'You need to sign in',
  message: (app) => `${app} asked to continue without showing you a sign-in page, but you need to sign in first. Go back and sign in again.`,
};

/** oidc-provider's error codes, as the person at the browser would put them. */
const PLAIN: Record<string, Words> = {
  access_denied: DECLINED,
  invalid_redirect_uri: {
    title: 'This sign-in link cannot be used',
    message: (app) => `${app} asked to send you back to an address it has not registered here, so you cannot be sent back to it. Nothing was shared. Tell the people who run ${app}.`,
  },
  invalid_client: {
    title: 'This application is not known here',
    message: (app) => `${app} is not registered with this identity provider, so you cannot sign in to it here.`,
  },
  unauthorized_client: {
    title: 'This application may not sign in this way',
    message: (app) => `${app} asked for a kind of sign-in it is not allowed to use here. Tell the people who run it.`,
  },
  login_required: SIGN_IN_NEEDED,
  interaction_required: SIGN_IN_NEEDED,
  consent_required: SIGN_IN_NEEDED,
  account_selection_required: SIGN_IN_NEEDED,
  session_not_found: {
    title: 'This sign-in has expired',
    message: (app) => `This sign-in has expired or was already completed. Go back to ${app} and sign in again.`,
  },
  server_error: {
    title: 'Something went wrong',
    message: () => 'Something went wrong on our side. Try again in a moment.',
  },
};

/** oidc-provider's description when a client registered with `require_pushed_authorization_requests` did not push its request. */
export const PAR_REQUIRED = 'Pushed Authorization Request must be used';

const NOT_PUSHED: Words = {
  title: 'This application must start its sign-in another way',
  message: (app) => `${app} sent this sign-in straight here, but it is registered to send it to this identity provider first, so nothing was shared. Tell the people who run ${app}.`,
};

/**
 * What the developers of `client` must do when it sent its authorization request straight to the
 * authorization endpoint although it is registered with `require_pushed_authorization_requests`
 * (RFC 9126 §5). With its redirect_uri inside a request object, oidc-provider cannot send the
 * error back to it, and the OP's page (or JSON) is all it gets. Names only what is public.
 *
 * @example
 * notPushedDetails(client, ctx.oidc.urlFor('pushed_authorization_request'))
 */
export function notPushedDetails(client: Client, parEndpoint: string): string {
  return `${PAR_REQUIRED}: client ${JSON.stringify(client.clientId)} is registered with require_pushed_authorization_requests, so it must first POST `
    + `its authorization request (its parameters, or its request object) to the pushed_authorization_request_endpoint ${parEndpoint} and then send `
    + 'the browser here with only client_id and the request_uri answered (RFC 9126). With @openid-express/rp: pushedAuthorizationRequests: true in its provider entry.';
}

const OTHER: Words = {
  title: 'This request cannot be completed',
  message: (app) => `${app} sent a request this identity provider cannot accept, so nothing was shared. Go back and try again; if it happens again, tell the people who run it.`,
};

/**
 * The error view's props for an error oidc-provider shows itself (it could not send the user back
 * to the client): what happened in plain words, the way back to the client when it is known, and
 * oidc-provider's own description as the detail for developers.
 *
 * @example
 * plainError(400, 'access_denied', 'End-User aborted interaction', client)
 * // code 'session_not_found' (oidc-provider's SessionNotFound, sent as invalid_request) reads "This sign-in has expired"
 */
export function plainError(status: number, code: string, description: string | undefined, client: Client | undefined): ErrorViewProps {
  const words = description?.startsWith(PAR_REQUIRED) ? NOT_PUSHED : PLAIN[code] ?? OTHER;
  const clientName = client ? client.clientName ?? client.clientId : undefined;
  const backUrl = safeHref(client?.clientUri);
  const message = words.message(clientName ? withoutBidiControls(clientName) : 'the application you came from');
  return {
    title: words.title, status, code, message: message.charAt(0).toUpperCase() + message.slice(1),
    details: description, clientName, backUrl, backLabel: clientName ? `Back to ${withoutBidiControls(clientName)}` : undefined,
  };
}
