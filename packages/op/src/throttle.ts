import { createHash } from 'node:crypto';
import type { OpStore } from './adapters/types.js';

/** Failed-login limits per login name and per client IP, kept in the shared store. */
export interface Throttle {
  /** Whether either counter has reached the limit (then the password is not even checked). */
  isLocked(login: string | undefined, ip: string): Promise<boolean>;
  /** Counts one failure against both. */
  fail(login: string | undefined, ip: string): Promise<void>;
  /** Forgets the login's failures after a success (the IP keeps its count). */
  succeed(login: string | undefined): Promise<void>;
}

// hashed so store keys carry no login names or addresses in clear
const key = (kind: string, value: string) => `openid-express:login:${kind}:${createHash('sha256').update(value).digest('base64url')}`;

/**
 * Throttling over an `OpStore`'s counters.
 *
 * @example
 * const t = throttle(store, { maxFailures: 5, windowSeconds: 900 });
 * if (await t.isLocked(login, req.ip)) return tooMany();
 */
export function throttle(store: OpStore, limits: { maxFailures: number; windowSeconds: number }): Throttle {
  const keys = (login: string | undefined, ip: string) => [key('ip', ip), ...(login ? [key('login', login)] : [])];
  return {
    async isLocked(login, ip) {
      const counts = await Promise.all(keys(login, ip).map((k) => store.count(k)));
      return counts.some((c) => c >= limits.maxFailures);
    },
    async fail(login, ip) {
      await Promise.all(keys(login, ip).map((k) => store.increment(k, limits.windowSeconds)));
    },
    async succeed(login) {
      if (login) await store.reset(key('login', login));
    },
  };
}
