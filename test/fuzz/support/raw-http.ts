/**
 * HTTP/1.1 over a bare `node:net` socket: fetch and supertest normalise the request line and the
 * Host header, so malformed authorities (`Host: a b`, `127.0.0.1:99999`, none) need raw bytes.
 */
import { connect } from 'node:net';

export interface RawRequest {
  method: string;
  /** Written as is on the request line (latin1: bytes ≥ 0x80 go out unchanged). */
  target: string;
  /** In order; a `host` entry is written as given, none means no Host header at all. */
  headers: Array<[string, string]>;
  body?: Buffer;
}

export interface RawResponse {
  /** 0 when the connection closed without an answer. */
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  ms: number;
  timedOut: boolean;
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

export function parseResponse(data: Buffer): Omit<RawResponse, 'ms' | 'timedOut'> {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: {}, body: data };
  const [statusLine, ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    headers[name] = headers[name] ? `${headers[name]}, ${line.slice(colon + 1).trim()}` : line.slice(colon + 1).trim();
  }
  const rest = data.subarray(end + 4);
  const body = /chunked/i.test(headers['transfer-encoding'] ?? '') ? dechunk(rest)
    : headers['content-length'] ? rest.subarray(0, Number(headers['content-length'])) : rest;
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers, body };
}

/** The bytes of a request: `Connection: close` and a matching Content-Length are added. */
export function serialize(req: RawRequest): Buffer {
  const lines = [`${req.method} ${req.target} HTTP/1.1`, ...req.headers.map(([k, v]) => `${k}: ${v}`), 'Connection: close'];
  if (req.body) lines.push(`Content-Length: ${req.body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), req.body ?? Buffer.alloc(0)]);
}

/** Sends one request on its own connection and reads the answer until the server closes it. */
export function send(port: number, req: RawRequest, timeoutMs: number): Promise<RawResponse> {
  return new Promise((resolve) => {
    const started = performance.now();
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1');
    let done = false;
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseResponse(Buffer.concat(chunks)), ms: performance.now() - started, timedOut });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => finish(false));
    socket.on('close', () => finish(false));
    // a server may answer (413, 431) and close before it read everything we wrote
    socket.on('error', () => finish(false));
    socket.write(serialize(req));
  });
}
