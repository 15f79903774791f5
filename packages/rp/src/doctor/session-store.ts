/**
 * ✔ the session store fits the deployment: MemoryStore is flagged with NODE_ENV=production (it leaks, and
 * loses every login at restart) and with more than one instance (each instance would have its own, so a
 * login started on one fails on another).
 */
import { storeName } from './session-facts.js';
import { fail, pass, skip, type AppContext, type CheckResult } from './types.js';

export function checkSessionStore(ctx: AppContext): CheckResult {
  const s = ctx.session;
  const name = storeName(s?.store);
  if (!s || !name) return skip('the session store is unknown (see session)');
  const instances = ctx.options.instances ?? 1;
  const memory = name === 'MemoryStore';
  const problems: string[] = [];
  if (memory && instances > 1) problems.push(`${instances} instances each keep their own MemoryStore: a login started on one instance fails on another (missing state), and a logout reaches one instance only`);
  if (memory && process.env.NODE_ENV === 'production') problems.push('MemoryStore with NODE_ENV=production: it grows without bound and every login is lost at each restart or deploy');
  if (problems.length) {
    return fail(
      `the session store is MemoryStore (${s.source}): ${problems.join('; ')}`,
      "a shared store, e.g. Redis: session({ ..., store: new RedisStore({ client: redisClient }) }) (connect-redis)" + (instances > 1 ? ' and rp({ coordination: redisCoordination(redisClient) })' : ''),
    );
  }
  if (memory) return pass('MemoryStore: fine for one instance in development (flagged with NODE_ENV=production or instances > 1)');
  return pass(`${name}${instances > 1 ? `, shared by the ${instances} instances` : ''}`);
}
