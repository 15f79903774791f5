// Load generation: autocannon for single routes, a bounded loop of virtual users for flows.
import autocannon from 'autocannon';
import { ask } from './children.mjs';

/**
 * requests/s and latency of one route with autocannon, bounded by `seconds` and `maxRequests`; with
 * `rate`, at that many requests per second instead of as many as the server can answer.
 * Throws when answers are not what `expectStatus` says (a benchmark of errors measures nothing).
 */
export async function hammer({ url, method = 'GET', headers = {}, body, bodies, seconds, connections = 10, maxRequests = 200_000, expectStatus, rate }) {
  // `bodies`: one body per request (single-use values such as authorization codes), at most that many requests
  let next = 0;
  const requests = bodies ? [{ method, headers, setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }) }] : undefined;
  const cap = bodies ? Math.min(maxRequests, bodies.length) : maxRequests;
  // `rate`: a fixed number of requests per second over all connections (0: as fast as the server answers)
  const result = await autocannon({ url, method, headers, body, requests, duration: seconds, connections, maxOverallRequests: cap, ...(rate ? { overallRate: rate } : {}) });
  const total = Object.values(result.statusCodeStats).reduce((n, s) => n + s.count, 0);
  const good = result.statusCodeStats[expectStatus]?.count ?? 0;
  if (result.errors || result.timeouts || good < total || total === 0) {
    throw new Error(`${url}: ${good}/${total} answers were ${expectStatus} (status counts ${JSON.stringify(result.statusCodeStats)}, ${result.errors} errors, ${result.timeouts} timeouts)`);
  }
  const elapsed = result.start && result.finish ? (new Date(result.finish) - new Date(result.start)) / 1000 : result.duration || seconds;
  return { rps: total / elapsed, p50: result.latency.p50, p99: result.latency.p99, requests: total };
}

/** The q-quantile (0..1) of `values` (milliseconds). */
export function quantile(values, q) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Runs `iteration(user)` for each of `users` virtual users in a loop until `seconds` have passed or
 * `maxIterations` have started; returns iterations/s and latency quantiles (ms).
 */
export async function loop({ users, seconds, maxIterations, iteration }) {
  const durations = [];
  let started = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async (user) => {
    while (performance.now() < deadline && started < maxIterations) {
      started += 1;
      const t0 = performance.now();
      await iteration(user);
      durations.push(performance.now() - t0);
    }
  };
  await Promise.all(users.map(worker));
  const elapsed = (performance.now() - start) / 1000;
  return { rps: durations.length / elapsed, p50: quantile(durations, 0.5), p99: quantile(durations, 0.99), requests: durations.length };
}

/**
 * Runs `measure()` while counting the server child's CPU time (it answers { cmd: 'cpu' }):
 * wall-clock figures depend on what else the shared machine runs, CPU time per request much less.
 */
export async function withCpu(child, measure) {
  const before = await ask(child, { cmd: 'cpu' });
  const result = await measure();
  const after = await ask(child, { cmd: 'cpu' });
  return { ...result, cpuUs: (after - before) / result.requests };
}

/** CPU time this process has used (user + system), in microseconds. */
export function cpuMicros() {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** Keeps the round with the most requests per second, and the least CPU per request of all rounds. */
export function keepBest(results, name, result) {
  const old = results[name];
  if (!old) results[name] = result;
  else results[name] = { ...(result.rps > old.rps ? result : old), cpuUs: Math.min(old.cpuUs, result.cpuUs) };
}
