import type { Request } from 'express';
import { consent, type ConsentViewProps } from './consent.js';
import {
  deviceConfirm, deviceInput, deviceSuccess, type DeviceConfirmViewProps, type DeviceInputViewProps, type DeviceSuccessViewProps,
} from './device.js';
import { error, type ErrorViewProps } from './error.js';
import { layout, type LayoutProps } from './layout.js';
import { login, type LoginViewProps } from './login.js';
import { logout, logoutSuccess, type LogoutSuccessViewProps, type LogoutViewProps } from './logout.js';

/**
 * A view: a function returning HTML (a string, or a `String` object as some template libraries make), or the
 * name of a view rendered by the app's engine (`res.render`).
 */
export type View<P> = ((props: P) => string | String | Promise<string | String>) | string;

/** Props of every view, by view name. */
export interface ViewProps {
  layout: LayoutProps;
  login: LoginViewProps;
  consent: ConsentViewProps;
  error: ErrorViewProps;
  logout: LogoutViewProps;
  logoutSuccess: LogoutSuccessViewProps;
  /** The device flow's "enter the code" page (`features.deviceFlow`). */
  deviceInput: DeviceInputViewProps;
  /** The device flow's "is this your device?" page. */
  deviceConfirm: DeviceConfirmViewProps;
  /** The device flow's "your device is signed in" page. */
  deviceSuccess: DeviceSuccessViewProps;
}

/** The OP's views; any can be overridden through the `views` option. */
export type Views = { [K in keyof ViewProps]: View<ViewProps[K]> };

/**
 * The default views, to reuse inside your own.
 *
 * @example
 * op({ issuer, accounts, views: { login: (p) => `<p class="banner">Staff only</p>${(defaultViews.login as (x: typeof p) => string)(p)}` } });
 */
export const defaultViews: Views = { layout, login, consent, error, logout, logoutSuccess, deviceInput, deviceConfirm, deviceSuccess };

function appRender(req: Request, name: string, locals: object): Promise<string> {
  // op() is a sub-app with its own `views` setting: render with the app it is mounted on
  const app = (req.app as Request['app'] & { parent?: Request['app'] }).parent ?? req.app;
  return new Promise((resolve, reject) => {
    app.render(name, { ...(req.res?.locals ?? {}), ...locals }, (err, html) => (err ? reject(err) : resolve(html)));
  });
}

async function one<K extends keyof ViewProps>(req: Request, views: Views, name: K, props: ViewProps[K]): Promise<string> {
  const view = views[name] as View<ViewProps[K]>;
  let html: unknown;
  try {
    html = await (typeof view === 'string' ? appRender(req, view, props) : view(props));
  } catch (err) {
    // the app's view (or its template engine) failed: said with the view's name, the original as the cause
    if (views[name] === defaultViews[name]) throw err;
    throw new Error(`views.${String(name)}${typeof view === 'string' ? ` ("${view}", rendered with app.render)` : ''} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  // a String object (html`…` of some template libraries) is HTML too
  if (html instanceof String) return String(html);
  // an arrow function with braces and no return sent users a page reading "undefined"
  if (typeof html !== 'string') {
    throw new Error(`views.${String(name)} returned ${html === null ? 'null' : typeof html}, not a string of HTML (a function with braces needs a return)`);
  }
  return html;
}

const FULL_PAGE = /^\s*(<!doctype|<html)/i;

/** What every page shows of the OP itself: `op({ name, logoUri })`. */
export interface Brand {
  name?: string;
  logoUri?: string;
}

/** The views `op()` draws with, and its brand (handed to the layout). */
export type BrandedViews = Views & { brand?: Brand };

/**
 * Renders view `name` and wraps it in the layout (with the OP's name and logo), unless the view
 * already returned a full page (starting with `<!DOCTYPE` or `<html>`).
 */
export async function renderPage<K extends Exclude<keyof ViewProps, 'layout'>>(
  req: Request,
  views: BrandedViews,
  name: K,
  props: ViewProps[K],
): Promise<string> {
  const body = await one(req, views, name, props);
  if (FULL_PAGE.test(body)) return body;
  return one(req, views, 'layout', { title: props.title, body, name: views.brand?.name, logoUri: views.brand?.logoUri });
}

/** The default views with `views`' brand: the fallback when an app's view fails. */
export function defaultsOf(views: BrandedViews): BrandedViews {
  return { ...defaultViews, brand: views.brand };
}
