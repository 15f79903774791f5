/**
 * Shapes shared by the doctor's checks: one line of the report, what the checks of one provider
 * know about it, and what the session checks know about the app's express-session.
 */
import type { Application, RequestHandler } from 'express';
import type { SessionOptions } from 'express-session';
import type * as client from 'openid-client';
import type { ProviderConfig } from '../options.js';
import type { RelyingParty } from '../relying-party.js';
import type { Http, Probe } from './http.js';

/** One line of the checklist: ✔ (`ok: true`), ✘ (`ok: false`, with the fix) or – (`'skipped'`, with the reason). */
export interface DoctorCheck {
  /** The provider (its name in `rp({ providers })`) the check is about; absent for the app-wide checks. */
  provider?: string;
  /** Stable name of the check: discovery, issuer, https, clock, metadata, jwks, credentials, callback, post-logout, backchannel-logout, session, cookie-secure, cookie-samesite, trust-proxy, cookie-name, session-store, coordination. */
  name: string;
  ok: boolean | 'skipped';
  /** What was found: what is wrong and where (provider, URL, option), or why the check was skipped. */
  detail: string;
  /** For a ✘: what to change. */
  fix?: string;
}

/** What `doctor()` returns; `ok` is true when no check failed (skipped ones do not count). */
export interface DoctorReport {
  ok: boolean;
  /** The app's external origin (`baseURL`). */
  baseURL: string;
  checks: DoctorCheck[];
}

/** Options of `doctor()`. */
export interface DoctorOptions {
  /** The Express app: its `trust proxy` setting and the express-session middleware mounted before `rp()` are checked. */
  app?: Application;
  /**
   * Your express-session settings, when `rp({ session })` does not hold them and `app` is not given (or to be explicit):
   * the options object given to `session()` (`{ name, cookie, store, proxy }`), or the middleware `session()` returned.
   */
  session?: SessionOptions | RequestHandler;
  /** How many instances (processes, containers) of the app serve the same baseURL. Default 1. */
  instances?: number;
  /**
   * True when a TLS-terminating proxy (load balancer, nginx, a PaaS router) sits in front of the app; false when the app
   * serves https itself. Default: true when baseURL is https.
   */
  behindProxy?: boolean;
  /** The post_logout_redirect_uri values to check (the `returnTo` pages of logout). Default: `{baseURL origin}/`. */
  postLogoutRedirectUris?: string[];
  /** Only these providers (names in `rp({ providers })`). Default: all configured ones. */
  providers?: string[];
  /** The fetch the doctor's own probes use (discovery, authorization, end-session, back-channel). Default: global fetch. */
  fetch?: typeof fetch;
  /** Milliseconds each probe may take. Default 10000. */
  timeout?: number;
}

/** What `✔ / ✘ / –` a check answers, before the provider and name are attached. */
export type CheckResult = Omit<DoctorCheck, 'provider' | 'name'>;

export const pass = (detail: string): CheckResult => ({ ok: true, detail });
export const fail = (detail: string, fix: string): CheckResult => ({ ok: false, detail, fix });
export const skip = (detail: string): CheckResult => ({ ok: 'skipped', detail });

/** The OP's discovery document as fetched by the doctor (not by openid-client). */
export interface DiscoveryResult {
  url: string;
  probe?: Probe;
  /** Why the document could not be used (network error, HTTP status, not JSON). */
  error?: string;
  metadata?: Record<string, unknown>;
}

/** What the checks of one provider share. */
export interface ProviderContext {
  name: string;
  p: ProviderConfig;
  rp: RelyingParty;
  http: Http;
  options: DoctorOptions;
  /** Absent with static `providerInfo`. */
  discovery?: DiscoveryResult;
  /** The RP's own openid-client Configuration (`relyingParty.providerInfo(name)`), when it could be built. */
  config?: client.Configuration;
  /** Why it could not. */
  configError?: string;
}

/** What the session checks know about the app's express-session. */
export interface SessionFacts {
  /** Where the settings were found (said in the report). */
  source: string;
  /** The session cookie's name. */
  name?: string;
  secure?: boolean | 'auto';
  sameSite?: boolean | 'lax' | 'strict' | 'none' | 'auto';
  path?: string;
  /** The session store; undefined when unknown. */
  store?: object;
  /** express-session's `proxy` option, when known. */
  proxy?: boolean;
  /** A problem found while reading the settings (mounted after rp(), cookie path not covering the callback …). */
  problem?: { detail: string; fix: string };
}

/** What the app-wide checks share. */
export interface AppContext {
  rp: RelyingParty;
  options: DoctorOptions;
  http: Http;
  /** Undefined when neither `rp({ session })`, `app` nor `session` told the doctor anything. */
  session?: SessionFacts;
  /** Why the session settings are unknown. */
  sessionUnknown?: string;
  /** The `maxmemory-policy` of the `redisCoordination()` Redis, when it evicts keys (see `evictionPolicyOf`). */
  evictionPolicy?: string;
  /** The host names of each checked OP (issuer and endpoints), for the cookie-name check. */
  opHosts: Array<{ name: string; issuer: string; hosts: string[] }>;
}

/** Metadata value `key` as a string, or undefined. */
export function meta(m: Record<string, unknown> | undefined, key: string): string | undefined {
  const v = m?.[key];
  return typeof v === 'string' && v ? v : undefined;
}

/** The OP's metadata as the RP uses it: openid-client's, else the doctor's discovery, else static providerInfo. */
export function metadataOf(ctx: ProviderContext): Record<string, unknown> | undefined {
  return (ctx.config?.serverMetadata() as Record<string, unknown> | undefined) ?? ctx.discovery?.metadata ?? ctx.p.providerInfo;
}

/** `providers.<name>`, as the options are named in messages. */
export const at = (ctx: { name: string }): string => `providers.${ctx.name}`;
