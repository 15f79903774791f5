/**
 * A Redis connection that stopped answering while Redis itself answers: at a failover the old node
 * can vanish without closing its connections (no FIN, no RST: a host gone, a NAT entry dropped), and
 * node-redis then waits on that connection until the operating system gives up on it (about 15
 * minutes with Linux's defaults), every call a 503 after its deadline. When a call misses its
 * deadline, a new connection to the same Redis is tried: if it answers at once while this one still
 * does not within 5 s more, this one is dead, and the client is reconnected (node-redis's `destroy()` then
 * `connect()`, on the client the app gave, so its session store recovers too). A Redis that is
 * stalled or down answers the new connection neither, and is left to the client's own reconnection.
 * The same check is in @openid-express/op (`adapters/stuck-connection.ts`): the two packages share no code.
 */
import net from 'node:net';
import createDebug from 'debug';

const debug = createDebug('openid-express:rp');

/** What the check needs of a node-redis v5 client for one server (`createClient()`). */
interface SingleClient {
  readonly isReady?: boolean;
  readonly isOpen?: boolean;
  /** node-redis's options, its url parsed into `socket` */
  readonly options?: { socket?: { host?: string; port?: number; path?: string; tls?: boolean } };
  duplicate(): SingleClient;
  connect(): Promise<unknown>;
  destroy(): void;
  sendCommand(args: string[]): Promise<unknown>;
  on?(event: 'error', listener: (err: unknown) => void): unknown;
}

/** How long the old connection is given to answer a PING once a new one has answered. */
const OLD_CONNECTION_WAIT_MS = 5_000;

/** When each client was last checked, and those being checked: one check at a time, one per two deadlines at most, whatever the traffic. */
const lastChecked = new WeakMap<object, number>();
const checking = new WeakSet<object>();

/**
 * After a call on `client` missed its deadline (`timeoutMs`): checks, in the background, whether its
 * connection is dead while Redis answers, and reconnects it if so (`who` names the caller in the log).
 * Does nothing for clients of another kind (Cluster and Sentinel clients manage their own connections).
 */
export function recoverStuckConnection(client: unknown, timeoutMs: number, who: string): void {
  if (!isSingleClient(client) || client.isReady !== true) return;
  const now = Date.now();
  if (checking.has(client) || now - (lastChecked.get(client) ?? -Infinity) < 2 * timeoutMs) return;
  lastChecked.set(client, now);
  checking.add(client);
  check(client, timeoutMs, who).finally(() => checking.delete(client)).catch((err: unknown) => debug('%s: the check of a stuck Redis connection failed: %s', who, (err as Error)?.message));
}

function isSingleClient(client: unknown): client is SingleClient {
  const c = client as Partial<SingleClient> & { masters?: unknown; getMasterNode?: unknown } | null;
  return !!c && typeof c.duplicate === 'function' && typeof c.connect === 'function' && typeof c.destroy === 'function'
    && typeof c.sendCommand === 'function' && c.masters === undefined && c.getMasterNode === undefined;
}

/** `work`, or a rejection once `ms` have passed without its answer (the work goes on). */
export function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

async function check(client: SingleClient, timeoutMs: number, who: string): Promise<void> {
  const fresh = client.duplicate();
  fresh.on?.('error', () => undefined);
  try {
    // a script, as the calls send: Redis holds it back while writes are paused (CLIENT PAUSE WRITE, as
    // its FAILOVER and managed maintenance do), where a PING would answer and the old connection, behind
    // a paused write, would look dead
    await within(fresh.connect().then(() => fresh.sendCommand(['EVAL', 'return 1', '0'])), timeoutMs);
  } catch {
    return; // Redis itself does not answer (stalled, down, failing over, paused): the client reconnects by itself once it can
  } finally {
    if (fresh.isOpen) fresh.destroy();
  }
  // the old connection gets longer: a command of the app's that blocks it for a while (BLPOP with a
  // timeout) or a backlog is not a dead connection
  if (await within(client.sendCommand(['PING']), Math.max(OLD_CONNECTION_WAIT_MS, 2 * timeoutMs)).then(() => true, () => false)) return; // it answers
  if (client.isReady !== true) return; // reconnecting by itself meanwhile
  console.warn(`[@openid-express/rp] ${who}: the connection to Redis stopped answering while a new one to the same Redis answered at once `
    + '(a failover, or a network device that dropped the connection silently): reconnecting it.');
  client.destroy();
  await client.connect();
}

/** How often a client that gets READONLY is checked at most: the replies come with every write while it lasts. */
const READ_ONLY_CHECK_MS = 5_000;
const readOnlyCheckedAt = new WeakMap<object, number>();

/**
 * After `client` got a READONLY reply: checks, in the background (once per {@link READ_ONLY_CHECK_MS}
 * at most), whether a new connection to the same address reaches a master, and reconnects the client
 * if so. At a failover behind one endpoint (a managed Redis's primary endpoint, a DNS name, a TCP
 * proxy) the endpoint leads to the new master while the open connections stay on the old one, now a
 * replica: every write got READONLY until the app was restarted. An address that names a replica (a
 * new connection reaches a replica too), or a role that cannot be asked (HELLO disabled and ROLE denied
 * by an ACL: said in the log), is left alone: the client then has to be pointed at the master, as the
 * READONLY error says. Cluster and Sentinel clients follow failovers themselves and are not checked.
 */
export function recoverReadOnlyConnection(client: unknown, who: string): void {
  if (!isSingleClient(client) || client.isReady !== true) return;
  const now = Date.now();
  if (now - (readOnlyCheckedAt.get(client) ?? -Infinity) < READ_ONLY_CHECK_MS) return;
  readOnlyCheckedAt.set(client, now);
  checkReadOnly(client, who).catch((err: unknown) => debug('%s: the check of a READONLY Redis connection failed: %s', who, (err as Error)?.message));
}

/** A reply of Redis's refusing a command (an ACL's NOPERM, an unknown command), not a connection that failed. */
const isRefusal = (err: unknown): boolean => ['ErrorReply', 'SimpleError'].includes((err as Error | undefined)?.constructor?.name ?? '');

/**
 * The role a connection reaches (`master`, `replica`/`slave`, `sentinel`): HELLO's `role` (HELLO is in
 * no ACL category `+@all -@dangerous` takes away, ROLE is @dangerous), else ROLE's first element.
 */
async function role(client: SingleClient): Promise<unknown> {
  // without a protocol version HELLO leaves the connection's as it is (RESP2: a flat list of names and values; RESP3: a map)
  const hello = await within(client.sendCommand(['HELLO']), OLD_CONNECTION_WAIT_MS).catch((err: unknown) => {
    if (!isRefusal(err)) throw err; // no answer: ROLE would get none either
  });
  const fields = Array.isArray(hello) ? hello.indexOf('role') : -1;
  const said = fields >= 0 ? (hello as unknown[])[fields + 1] : hello instanceof Map ? hello.get('role') : (hello as { role?: unknown } | undefined)?.role;
  if (said !== undefined) return String(said);
  const reply = await within(client.sendCommand(['ROLE']), OLD_CONNECTION_WAIT_MS);
  return Array.isArray(reply) ? String(reply[0]) : undefined;
}

/** When each client's READONLY check was last said to be refused (once a minute at most). */
const roleDeniedSaidAt = new WeakMap<object, number>();

async function checkReadOnly(client: SingleClient, who: string): Promise<void> {
  const fresh = client.duplicate();
  fresh.on?.('error', () => undefined);
  let reached: unknown;
  let connected = false;
  try {
    await within(fresh.connect(), OLD_CONNECTION_WAIT_MS);
    connected = true;
    reached = await role(fresh);
  } catch (err) {
    // unreachable: nothing known, the READONLY error's hint stands; the role refused (an ACL): said, or it would never recover
    if (connected && isRefusal(err) && Date.now() - (roleDeniedSaidAt.get(client) ?? -Infinity) > 60_000) {
      roleDeniedSaidAt.set(client, Date.now());
      console.warn(`[@openid-express/rp] ${who}: Redis answered READONLY, and whether a new connection to the same address reaches the master could not be `
        + `checked: Redis refused both HELLO and ROLE (${String((err as Error).message).slice(0, 120)}): let the Redis user run ROLE (+role) or HELLO `
        + '(+hello, where the server has it) so the client is reconnected after a failover behind one endpoint; until then point the client at the current master.');
    }
    return;
  } finally {
    if (fresh.isOpen) fresh.destroy();
  }
  if (reached !== 'master') return; // the address names a replica: reconnecting would reach one again
  // the client may have reconnected meanwhile (its own reconnection, another check)
  if (client.isReady !== true || (await role(client).catch(() => undefined)) === 'master') return;
  console.warn(`[@openid-express/rp] ${who}: Redis answered READONLY on this connection (it reaches a replica: after a failover, the old master) `
    + 'while a new connection to the same address reaches the master (an endpoint that follows failovers): reconnecting it.');
  client.destroy();
  await client.connect();
}

/** What Redis writes to a new connection at its connection limit (maxclients) before it closes it. */
const LIMIT_REPLY = 'ERR max number of clients reached';
const limitCheckedAt = new WeakMap<object, number>();
const limitSeenAt = new WeakMap<object, number>();

/**
 * While `client` reconnects: whether Redis refuses its connections at its connection limit. Redis
 * then writes `-ERR max number of clients reached` and closes, and node-redis 5 says only "Socket
 * closed unexpectedly", so the 503 and the log named nothing to change. A plain connection to the
 * client's address reads Redis's first line (a PING, answered at once by a Redis that has room), in
 * the background and once per 5 s per client (not over TLS, whose handshake comes first): the
 * refusal read within the last 30 s is returned, so the failures after the first name the limit.
 */
export function connectionLimitReply(client: unknown): string | undefined {
  if (!isSingleClient(client) || client.isReady !== false) return undefined;
  const now = Date.now();
  if (now - (limitCheckedAt.get(client) ?? -Infinity) >= READ_ONLY_CHECK_MS) {
    limitCheckedAt.set(client, now);
    void firstLine(client.options?.socket ?? {}).then((line) => (line.startsWith(`-${LIMIT_REPLY}`) ? limitSeenAt.set(client, Date.now()) : limitSeenAt.delete(client)));
  }
  return now - (limitSeenAt.get(client) ?? -Infinity) < 30_000 ? LIMIT_REPLY : undefined;
}

/** The first line Redis writes on a new connection to `socket`'s address, or '' (none within 1 s, not reachable, TLS). */
function firstLine(socket: { host?: string; port?: number; path?: string; tls?: boolean }): Promise<string> {
  if (socket.tls) return Promise.resolve('');
  return new Promise((resolve) => {
    const conn = socket.path ? net.connect(socket.path) : net.connect(socket.port ?? 6379, socket.host ?? 'localhost');
    let data = '';
    const done = (): void => {
      conn.destroy();
      resolve(data.includes('\n') ? data : '');
    };
    conn.setTimeout(1000, done).on('error', done).on('close', done).on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\n')) done();
    });
    conn.write('PING\r\n', () => undefined);
  });
}
