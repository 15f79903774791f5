/**
 * With more than one instance: ✔ `rp({ coordination })` is set, so one refresh grant runs per refresh token,
 * and back-channel logout and the logout-token replay check work across instances. With any number: ✘ a
 * `redisCoordination()` whose Redis evicts keys before they expire.
 */
import { EVICTION_FIX, EVICTION_RISK } from '../coordination.js';
import { fail, pass, type AppContext, type CheckResult } from './types.js';

export function checkCoordination(ctx: AppContext): CheckResult | undefined {
  const instances = ctx.options.instances ?? 1;
  if (ctx.evictionPolicy) return fail(`the Redis of rp({ coordination }) runs with maxmemory-policy ${ctx.evictionPolicy}: ${EVICTION_RISK}`, EVICTION_FIX);
  if (instances <= 1) return undefined;
  if (ctx.rp.options.coordination) return pass(`rp({ coordination }) is set for the ${instances} instances`);
  return fail(
    `${instances} instances without rp({ coordination }): refresh grants and the logout-token replay check are coordinated within each process only (two instances may both redeem one refresh token, and the OP may revoke the login)`,
    'rp({ ..., coordination: redisCoordination(redisClient) })',
  );
}
