// A small round-robin HTTP reverse proxy (node:http only), standing in for the load balancer in
// front of several instances: consecutive requests go to alternating targets, a target that refuses
// the connection is skipped (the request is retried on the next one) and left out for a moment.
// It adds X-Forwarded-For / -Proto / -Host, streams bodies both ways, and counts what it routed.
import { createServer, request as httpRequest, Agent } from 'node:http';

/** Request bodies up to this size are kept while they stream, so a failed-over request can be replayed. */
const REPLAY_LIMIT = 1024 * 1024;
/** Errors that mean "this target did not answer": the next target may get the request. */
const FAILOVER_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ECONNABORTED']);
/** Methods whose request may be sent twice (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/** Hop-by-hop headers (RFC 9110 7.6.1): about one connection, never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-authenticate']);

function endToEnd(rawHeaders) {
  const out = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!HOP_BY_HOP.has(rawHeaders[i].toLowerCase())) out.push(rawHeaders[i], rawHeaders[i + 1]);
  }
  return out;
}

/**
 * Creates (does not start) a round-robin reverse proxy.
 *
 * @param {object} options
 * @param {string[]} options.targets  origins of the instances, e.g. ['http://127.0.0.1:4001', 'http://127.0.0.1:4002']
 * @param {number} [options.downFor=2000]  ms a target that refused a connection is left out
 * @param {string} [options.tokenPath]  path of the OP's token endpoint (e.g. '/op/token'): POSTs there are
 *   buffered to count `grant_type=refresh_token` requests (`counters.refreshGrants`)
 * @param {(req: import('node:http').IncomingMessage) => number | undefined} [options.pick]  choose the
 *   target index for a request (tests make a request land on a given instance); `undefined` = round robin
 * @param {(req: import('node:http').IncomingMessage) => string} [options.clientAddress]  the address put in
 *   X-Forwarded-For (default: the connection's remote address)
 * @returns {{ server: import('node:http').Server, listen(port?: number, host?: string): Promise<string>,
 *   close(): Promise<void>, counters: { requests: number[], refreshGrants: number, failovers: number, errors: number },
 *   log: Array<{ method: string, path: string, target: number, status?: number }>, pick?: Function, targets: string[] }}
 * @example
 *   const proxy = createProxy({ targets: ['http://127.0.0.1:4001', 'http://127.0.0.1:4002'] });
 *   const url = await proxy.listen(8080, '127.0.0.1'); // 'http://127.0.0.1:8080'
 */
export function createProxy({ targets, downFor = 2000, tokenPath, pick, clientAddress, logLimit = 5000 }) {
  if (!Array.isArray(targets) || targets.length === 0) throw new TypeError('createProxy: `targets` must list at least one origin');
  const origins = targets.map((t) => new URL(t));
  const agent = new Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16 });
  const downUntil = targets.map(() => 0);
  let next = 0;
  const counters = { requests: targets.map(() => 0), refreshGrants: 0, failovers: 0, errors: 0 };
  const log = [];
  const proxy = { server: undefined, counters, log, pick, targets, listen, close, resetCounters };

  function resetCounters() {
    counters.requests = targets.map(() => 0);
    counters.refreshGrants = 0;
    counters.failovers = 0;
    counters.errors = 0;
    log.length = 0;
  }

  // The order in which targets are tried for one request: the chosen one first, then the others.
  function order(req) {
    const n = targets.length;
    const chosen = proxy.pick?.(req);
    let first;
    if (chosen !== undefined && chosen !== null) {
      first = chosen % n;
    } else {
      // round robin over the targets that are up (all of them when none is)
      const now = Date.now();
      first = next % n;
      for (let i = 0; i < n && downUntil[(next + i) % n] > now; i += 1) first = (next + i + 1) % n;
      if (downUntil[first] > now) first = next % n;
      next = (first + 1) % n;
    }
    return Array.from({ length: n }, (_, i) => (first + i) % n);
  }

  const server = createServer((req, res) => {
    const tries = order(req);
    const entry = { method: req.method, path: req.url, target: tries[0] };
    log.push(entry);
    if (log.length > logLimit) log.shift();

    // Request body: streamed to the current target, remembered (up to REPLAY_LIMIT) for a failover.
    const chunks = [];
    let size = 0;
    let replayable = true;
    let ended = false;
    let upstream;
    let answered = false;
    const isTokenPost = tokenPath && req.method === 'POST' && req.url.split('?')[0] === tokenPath;

    req.on('data', (chunk) => {
      if (replayable) {
        chunks.push(chunk);
        size += chunk.length;
        if (size > REPLAY_LIMIT && !isTokenPost) {
          replayable = false;
          chunks.length = 0;
        }
      }
      if (upstream && !upstream.write(chunk)) {
        req.pause();
        upstream.once('drain', () => req.resume());
      }
    });
    req.on('end', () => {
      ended = true;
      if (isTokenPost) {
        const body = new URLSearchParams(Buffer.concat(chunks).toString('latin1'));
        if (body.get('grant_type') === 'refresh_token') counters.refreshGrants += 1;
      }
      upstream?.end();
    });
    req.on('error', () => upstream?.destroy());

    const attempt = (i) => {
      const index = tries[i];
      const target = origins[index];
      entry.target = index;
      counters.requests[index] += 1;
      const headers = { ...req.headers };
      for (const name of HOP_BY_HOP) delete headers[name];
      if (req.headers['transfer-encoding']) headers['transfer-encoding'] = req.headers['transfer-encoding'];
      const remote = clientAddress?.(req) ?? req.socket.remoteAddress ?? '';
      headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${remote}` : remote;
      headers['x-forwarded-proto'] ??= 'http';
      headers['x-forwarded-host'] ??= req.headers.host ?? '';
      const out = httpRequest({
        agent, host: target.hostname, port: target.port, method: req.method, path: req.url, headers,
      });
      upstream = out;
      if (req.isPaused()) req.resume(); // a failed target's 'drain' never comes
      out.on('response', (answer) => {
        answered = true;
        entry.status = answer.statusCode;
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.rawHeaders));
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      });
      out.on('error', (err) => {
        if (answered) return res.destroy();
        // sent again only when the target cannot have acted on it, or acting twice is harmless: it
        // refused the connection; the method is idempotent; or it went out on a kept-alive connection
        // that the target was closing as idle (what Node's docs advise, `reusedSocket`). A POST reset
        // on a new connection (the instance died while handling it) is a 502 the client must judge.
        const safe = err.code === 'ECONNREFUSED' || IDEMPOTENT.has(req.method) || out.reusedSocket;
        if (FAILOVER_CODES.has(err.code) && safe && i + 1 < tries.length && replayable) {
          downUntil[index] = Date.now() + downFor;
          counters.failovers += 1;
          return attempt(i + 1);
        }
        if (FAILOVER_CODES.has(err.code)) downUntil[index] = Date.now() + downFor;
        counters.errors += 1;
        entry.status = 502;
        if (!res.headersSent) {
          res.writeHead(502, { 'content-type': 'application/json', 'retry-after': '1' });
          res.end(JSON.stringify({ error: 'bad_gateway', error_description: 'no instance answered' }));
        } else {
          res.destroy();
        }
      });
      // Replay what was read so far, then keep streaming.
      for (const c of chunks) out.write(c);
      if (ended) out.end();
    };
    attempt(0);
    res.on('close', () => {
      if (!res.writableFinished) upstream?.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  proxy.server = server;

  function listen(port = 0, host = '127.0.0.1') {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve(`http://${host}:${server.address().port}`);
      });
    });
  }

  function close() {
    return new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
      agent.destroy();
    });
  }

  return proxy;
}
