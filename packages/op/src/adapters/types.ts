import type { Adapter } from 'oidc-provider';

/**
 * Where the OP keeps its records: oidc-provider's models (through `adapterFor`) and the
 * login-throttling counters (so limits hold across instances).
 * `memoryAdapter()` for development, `redisAdapter(client)` for production.
 */
export interface OpStore {
  /**
   * oidc-provider adapter factory, one per model name (Session, AccessToken, Grant ...).
   * Its `consume` is atomic: consuming a record that is already consumed (or gone) rejects with
   * `invalid_grant` (`invalid_request_uri` for PushedAuthorizationRequest), so racing redemptions
   * of one code or refresh token cannot all succeed.
   */
  adapterFor(modelName: string): Adapter;
  /** Adds one to `key`, (re)starting its expiry at `ttlSeconds` on the first hit; returns the new count. */
  increment(key: string, ttlSeconds: number): Promise<number>;
  /** The current count of `key` (0 when absent or expired). */
  count(key: string): Promise<number>;
  /**
   * Takes one off `key` (never below zero; its expiry unchanged). Optional: with it, login throttling
   * counts a client address's checks under way (a burst of guesses from one address is held to the
   * limit) and gives back what a sign-in that met a store outage counted; without it, only the
   * address's failures are counted, after the check.
   */
  decrement?(key: string): Promise<void>;
  /** Forgets `key`. */
  reset(key: string): Promise<void>;
  /**
   * Optional, for several instances: a shared queue of work to try again later (a back-channel
   * logout that met an app restarting). `schedule` adds `item` (a unique string) due at `dueAt`
   * (milliseconds since the epoch); `takeDue` removes and returns at most `max` items due by `now`,
   * atomically, so each item is taken by one instance. With them, any instance carries on the retries
   * of one that stopped; without them (`memoryAdapter()`), they live in the process that met the failure.
   * A store shared by instances should keep due times on one clock of its own (redisAdapter() uses
   * Redis's: the delay until `dueAt` from now, and its own "now" when taking), as instances' clocks differ.
   */
  schedule?(queue: string, item: string, dueAt: number): Promise<void>;
  takeDue?(queue: string, now: number, max: number): Promise<string[]>;
  /** Human name for logs and the production warning ("memory", "redis"). */
  readonly kind: string;
}
