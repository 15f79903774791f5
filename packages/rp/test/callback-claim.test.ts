/**
 * The callback claim on its own (over the default coordination, a real express-session MemoryStore):
 * what a copy of a login answer gets for each way its owner ended, and the lease of an owner that
 * works on or dies. The routes around it are tested in callback.test.ts and scale-out.test.ts.
 */
import session from 'express-session';
import { claimCallback, finishedLogin, type CallbackClaim, type ClaimResult } from '../src/callback-claim.js';
import { hashedKey, sessionStoreCoordination } from '../src/coordination.js';
import { seal } from '../src/sealed.js';
import { RpError } from '../src/errors.js';

const fast = { leaseMs: 300, renewMs: 100, waitMs: 600, pollMs: 20 };
const later = Date.now() + 600_000;
const coordination = () => sessionStoreCoordination(new session.MemoryStore());
const claimOf = (result: ClaimResult): CallbackClaim => {
  if (!('claim' in result)) throw new Error(`expected the claim, got ${JSON.stringify(result)}`);
  return result.claim;
};
const refusal = (promise: Promise<unknown>): Promise<RpError> => promise.then(() => { throw new Error('expected a refusal'); }, (err: RpError) => err);

test('signed in: a copy from the same browser session joins the login; a copy from any other session is "already used"', async () => {
  const c = coordination();
  const owner = claimOf(await claimCallback(c, 'state-1', ['old-session'], 'code-1', later, fast));
  expect(owner.waited).toBe(false);
  await owner.signedIn('old-session', 'new-session');
  expect(await claimCallback(c, 'state-1', ['old-session'], 'code-1', later, fast)).toEqual({ joined: 'new-session' });
  const other = await refusal(claimCallback(c, 'state-1', ['another-session'], 'code-1', later, fast));
  expect([other.code, other.status]).toEqual(['invalid_state', 400]);
  expect(other.message).toMatch(/already used/);
  // the same session and state without the answer's code (someone who planted that session and started the sign-in knows both)
  expect((await refusal(claimCallback(c, 'state-1', ['old-session'], 'forged', later, fast))).message).toMatch(/already used/);
  expect(await finishedLogin(c, 'state-1', 'forged', ['old-session'])).toBeUndefined();
  expect(await finishedLogin(c, 'state-1', 'code-1', ['old-session'])).toBe('new-session');
  // the session id is sealed: the stored value does not carry it in the clear
  expect(await c.get(hashedKey('oidc-cb:', 'state-1'))).not.toContain('new-session');
});

test('a copy from the browser whose request got a new session (a login replaced the one its cookie names) joins through that session\'s id; sessions that are not the owner\'s do not', async () => {
  const c = coordination();
  await claimOf(await claimCallback(c, 'state-2', ['tab-session'], 'code-2', later, fast)).signedIn('tab-session', 'new-session');
  expect(await claimCallback(c, 'state-2', ['replacement', 'other-app', 'tab-session'], 'code-2', later, fast)).toEqual({ joined: 'new-session' });
  expect((await refusal(claimCallback(c, 'state-2', ['replacement', 'other-app'], 'code-2', later, fast))).message).toMatch(/already used/);
  expect((await refusal(claimCallback(c, 'state-2', ['replacement', 'tab-session'], 'forged', later, fast))).message).toMatch(/already used/);
});

test('failed for good: every copy is "already used" at once', async () => {
  const c = coordination();
  await claimOf(await claimCallback(c, 's', ['sid'], 'code-1', later, fast)).spent();
  const started = Date.now();
  expect((await refusal(claimCallback(c, 's', ['sid'], 'code-1', later, fast))).message).toMatch(/already used/);
  expect(Date.now() - started).toBeLessThan(200);
});

test('failed for now: a copy takes the claim over, told that the session may have changed meanwhile', async () => {
  const c = coordination();
  await claimOf(await claimCallback(c, 'a', ['sid'], 'code-1', later, fast)).release();
  expect(claimOf(await claimCallback(c, 'a', ['sid'], 'code-1', later, fast)).waited).toBe(false); // nobody holds it: as a first claim
  await claimOf(await claimCallback(c, 'b', ['sid'], 'code-1', later, fast)).retry();
  expect(claimOf(await claimCallback(c, 'b', ['sid'], 'code-1', later, fast)).waited).toBe(true);
});

test('a copy waits for a live owner (its lease renewed) and gets how it ended', async () => {
  const c = coordination();
  const owner = claimOf(await claimCallback(c, 'w', ['sid'], 'code-1', later, fast));
  setTimeout(() => void owner.signedIn('sid', 'next'), 450); // past the lease: only the renewal keeps it
  const started = Date.now();
  expect(await claimCallback(c, 'w', ['sid'], 'code-1', later, fast)).toEqual({ joined: 'next' });
  expect(Date.now() - started).toBeGreaterThanOrEqual(400);
});

test('an owner that died: its lease expires and a copy takes over', async () => {
  const c = coordination();
  await c.setIfAbsent(hashedKey('oidc-cb:', 'd'), 'run:dead', 250);
  const started = Date.now();
  const taken = claimOf(await claimCallback(c, 'd', ['sid'], 'code-1', later, fast));
  expect(taken.waited).toBe(true);
  expect(Date.now() - started).toBeGreaterThanOrEqual(200);
});

test('an owner still working after the wait: 503 op_unavailable with a short Retry-After, and the claim stays its own', async () => {
  const c = coordination();
  const owner = claimOf(await claimCallback(c, 'slow', ['sid'], 'code-1', later, fast));
  const err = await refusal(claimCallback(c, 'slow', ['sid'], 'code-1', later, fast));
  expect([err.code, err.status, err.retryAfter]).toEqual(['op_unavailable', 503, 2]);
  expect(err.message).toMatch(/another request is still finishing this sign-in/);
  await owner.spent();
});

test('a claim of the version before leases (its owner id alone) is "already used", as it was', async () => {
  const c = coordination();
  await c.setIfAbsent(hashedKey('oidc-cb:', 'old'), 'Jx1oWf3z0v', 60_000);
  expect((await refusal(claimCallback(c, 'old', ['sid'], 'code-1', later, fast))).message).toMatch(/already used/);
});

test('the first outcome counts: a "spent" after "signed in" (a finally) changes nothing, and the lease is no longer renewed', async () => {
  const c = coordination();
  const owner = claimOf(await claimCallback(c, 'once', ['sid'], 'code-1', later, fast));
  await owner.signedIn('sid', 'new');
  await owner.spent();
  await owner.release();
  expect(await claimCallback(c, 'once', ['sid'], 'code-1', later, fast)).toEqual({ joined: 'new' });
  const dropped = claimOf(await claimCallback(c, 'dropped', ['sid'], 'code-1', later, fast));
  await dropped.spent();
  await new Promise((resolve) => setTimeout(resolve, 250)); // a renewal would have written run:… back
  expect((await refusal(claimCallback(c, 'dropped', ['sid'], 'code-1', later, fast))).message).toMatch(/already used/);
});

test('a rolling upgrade: a finished login recorded by an earlier version (sealed with the bare session id) is joined by no copy ("already used"); one this version records needs the browser\'s session cookie, whole, and the code (review-60)', async () => {
  const c = coordination();
  // what earlier versions wrote: done: + the new session id sealed with the old one and the state (and `p.` + the code)
  await c.set(hashedKey('oidc-cb:', 'state-old'), `done:${seal('new-session', 'old-session\nstate-old', 'callback')}`, 60_000);
  await c.set(hashedKey('oidc-cb:', 'state-p'), `done:p.${seal('new-session', 'old-session\nstate-p\ncode-1', 'callback')}`, 60_000);
  for (const state of ['state-old', 'state-p']) {
    expect((await refusal(claimCallback(c, state, ['old-session', 's:old-session.sig'], 'code-1', later, fast))).message).toMatch(/already used/);
    expect(await finishedLogin(c, state, 'code-1', ['old-session', 's:old-session.sig'])).toBeUndefined();
  }
  await claimOf(await claimCallback(c, 'state-new', ['s:old-session.sig'], 'code-2', later, fast)).signedIn('s:old-session.sig', 'newer-session');
  expect(await c.get(hashedKey('oidc-cb:', 'state-new'))).toMatch(/^done:c\./);
  expect(await finishedLogin(c, 'state-new', 'code-2', ['s:old-session.sig'])).toBe('newer-session');
  expect(await finishedLogin(c, 'state-new', 'forged', ['s:old-session.sig'])).toBeUndefined();
  expect(await finishedLogin(c, 'state-new', 'code-2', ['old-session', 's:old-session.forged'])).toBeUndefined();
});
