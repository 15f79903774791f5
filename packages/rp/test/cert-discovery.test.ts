/**
 * OpenID Connect RP certification, Config / Dynamic RP: the rp-discovery-webfinger-* cases, the
 * examples of OpenID Connect Discovery 1.0 §2.2 as test vectors for the identifier normalization
 * of §2.1, the identifiers that must be refused, and WebFinger answers that must not be trusted.
 *
 * Two kinds of servers answer: a small WebFinger server on loopback (its answers are shaped by the
 * test), and, for the spec's example hosts (example.com, ...), a recording HTTP client that never
 * touches the network (the request URL it receives is what the RP would send).
 *
 * rp-discovery-openid-configuration, rp-discovery-jwks_uri-keys and
 * rp-discovery-issuer-not-matching-config are played by options.test.ts and key-rotation.test.ts
 * (see CERTIFICATION.md); the Dynamic RP variant of the last one (after WebFinger) is here.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { DynamicProviders } from '../src/discovery/registration.js';
import { ISSUER_REL, MAX_IDENTIFIER_LENGTH, discoverIssuer, normalizeIdentifier, type WebFingerOptions } from '../src/discovery/webfinger.js';

interface Seen {
  path: string;
  resource: unknown;
  rel: unknown;
  /** The Host header: host and port. */
  host: string | undefined;
}

let server: Server;
let host = '';
let answer: (req: express.Request, res: express.Response) => void = () => undefined;
let configuration: (req: express.Request, res: express.Response) => void = (_req, res) => void res.status(404).end();
const seen: Seen[] = [];
let registrations = 0;
// https as far as the code under test knows; the test server speaks plain http on loopback
const overTls = ((url: string, init: RequestInit) => fetch(url.replace(/^https:/, 'http:'), init)) as typeof fetch;
const discover = (identifier: string, options: WebFingerOptions = {}) =>
  discoverIssuer(identifier, { allowPrivateNetwork: true, fetchImpl: overTls, ...options });
const issuerLink = (href: unknown) => (_req: express.Request, res: express.Response) =>
  void res.type('application/jrd+json').send(JSON.stringify({ links: [{ rel: ISSUER_REL, href }] }));

/** An HTTP client that records the URLs asked for and answers a JRD naming `issuer`, without any network. */
function recorder(issuer = 'https://server.example.com') {
  const urls: string[] = [];
  const fetchImpl = (async (url: string | URL) => {
    urls.push(String(url));
    return new Response(JSON.stringify({ links: [{ rel: ISSUER_REL, href: issuer }] }), { headers: { 'content-type': 'application/jrd+json' } });
  }) as typeof fetch;
  return { urls, fetchImpl };
}

beforeAll(async () => {
  const app = express();
  app.get('/.well-known/webfinger', (req, res) => {
    seen.push({ path: req.path, resource: req.query.resource, rel: req.query.rel, host: req.headers.host });
    answer(req, res);
  });
  app.get('/.well-known/openid-configuration', (req, res) => configuration(req, res));
  app.post('/reg', (_req, res) => {
    registrations += 1;
    res.status(400).json({ error: 'invalid_client_metadata' });
  });
  server = await new Promise<Server>((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
beforeEach(() => {
  seen.length = 0;
  registrations = 0;
  answer = issuerLink('https://op.example');
});

describe('certification', () => {
  test('rp-discovery-webfinger-url: a URL identifier (path, port) is asked for as itself at its host and port, rel issuer; the issuer is returned', async () => {
    answer = issuerLink('https://op.example/rp-id/rp-discovery-webfinger-url');
    await expect(discover(`https://${host}/rp-id/rp-discovery-webfinger-url`)).resolves.toBe('https://op.example/rp-id/rp-discovery-webfinger-url');
    expect(seen).toEqual([{ path: '/.well-known/webfinger', resource: `https://${host}/rp-id/rp-discovery-webfinger-url`, rel: ISSUER_REL, host }]);
    // the same URL typed without a scheme is https (§2.1.2), and its fragment is dropped
    await discover(`${host}/rp-id/rp-discovery-webfinger-url#section`);
    expect(seen[1]).toEqual(seen[0]);
  });

  test('rp-discovery-webfinger-acct: an acct: URI is asked for as itself at the host (and port) after "@", rel issuer; the issuer is returned', async () => {
    await expect(discover(`acct:rp-id.rp-discovery-webfinger-acct@${host}`)).resolves.toBe('https://op.example');
    expect(seen).toEqual([{ path: '/.well-known/webfinger', resource: `acct:rp-id.rp-discovery-webfinger-acct@${host}`, rel: ISSUER_REL, host }]);
    // the e-mail form is the same acct: URI (§2.1.2)
    await discover(`rp-id.rp-discovery-webfinger-acct@${host}`);
    expect(seen[1]).toEqual(seen[0]);
  });

  test('rp-discovery-webfinger-http-href: an http:// issuer in the answer is refused, unless the development opt-in allowInsecureRequests', async () => {
    answer = issuerLink('http://op.example');
    await expect(discover(`alice@${host}`)).rejects.toMatchObject({ code: 'webfinger_failed', message: expect.stringContaining('https URL') });
    await expect(discover(`alice@${host}`, { allowInsecureRequests: true })).resolves.toBe('http://op.example');
  });

  test('rp-discovery-webfinger-unknown-member: members the RP does not know (top level and in links) are ignored', async () => {
    answer = (req, res) => void res.type('application/jrd+json').send(JSON.stringify({
      subject: req.query.resource,
      'x-unknown-member': { nested: [1, 2, 3] },
      aliases: ['https://elsewhere.example/alice'],
      properties: { 'http://example.com/ns/role': 'employee' },
      links: [
        { rel: 'http://webfinger.net/rel/avatar', href: 'https://elsewhere.example/a.png', 'x-other': true },
        { rel: ISSUER_REL, href: 'https://op.example', titles: { en: 'OP' }, 'x-unknown': 'ignored' },
      ],
    }));
    await expect(discover(`alice@${host}`)).resolves.toBe('https://op.example');
    expect(seen.map((s) => s.resource)).toEqual([`acct:alice@${host}`]);
  });

  test('(Dynamic RP, rp-discovery-issuer-not-matching-config after WebFinger) a configuration naming another issuer than WebFinger did is refused; nothing is registered', async () => {
    const issuer = `http://${host}`;
    answer = issuerLink(issuer);
    configuration = (_req, res) => void res.json({
      issuer: 'http://other.example', authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`, registration_endpoint: `${issuer}/reg`, response_types_supported: ['code'],
      subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'],
    });
    const dynamic = new DynamicProviders({ webfinger: true, registration: true, allowPrivateNetwork: true, allowInsecureRequests: true }, (name) => `http://localhost/cb/${name}`);
    await expect(dynamic.resolve(`alice@${host}`)).rejects.toMatchObject({ code: 'registration_failed', message: expect.stringMatching(/^discovery at /) });
    expect(seen).toHaveLength(1);
    expect(registrations).toBe(0);
  });
});

describe('OpenID Connect Discovery 1.0 §2.2 examples: the exact WebFinger request', () => {
  const rel = 'rel=http%3A%2F%2Fopenid.net%2Fspecs%2Fconnect%2F1.0%2Fissuer';
  test.each([
    ['§2.2.1 e-mail address', 'joe@example.com', `https://example.com/.well-known/webfinger?resource=acct%3Ajoe%40example.com&${rel}`],
    ['§2.2.2 URL', 'https://example.com/joe', `https://example.com/.well-known/webfinger?resource=https%3A%2F%2Fexample.com%2Fjoe&${rel}`],
    ['§2.2.3 hostname and port', 'example.com:8080', `https://example.com:8080/.well-known/webfinger?resource=https%3A%2F%2Fexample.com%3A8080%2F&${rel}`],
    ['§2.2.4 acct URI', 'acct:juliet%40capulet.example@shopping.example.com',
      `https://shopping.example.com/.well-known/webfinger?resource=acct%3Ajuliet%2540capulet.example%40shopping.example.com&${rel}`],
  ])('%s: %s', async (_example, input, request) => {
    const { urls, fetchImpl } = recorder();
    await expect(discoverIssuer(input, { allowPrivateNetwork: true, fetchImpl })).resolves.toBe('https://server.example.com');
    expect(urls).toEqual([request]);
  });
});

describe('identifier normalization (Discovery 1.0 §2.1.2)', () => {
  test.each<[string, string, string]>([
    // the §2.2 examples
    ['joe@example.com', 'acct:joe@example.com', 'example.com'],
    ['https://example.com/joe', 'https://example.com/joe', 'example.com'],
    ['example.com:8080', 'https://example.com:8080/', 'example.com:8080'],
    ['acct:juliet%40capulet.example@shopping.example.com', 'acct:juliet%40capulet.example@shopping.example.com', 'shopping.example.com'],
    // an "@" in the user part of a typed e-mail form is percent-encoded (§2.1.2): the §2.2.4 resource
    ['juliet@capulet.example@shopping.example.com', 'acct:juliet%40capulet.example@shopping.example.com', 'shopping.example.com'],
    // ports
    ['joe@example.com:8080', 'acct:joe@example.com:8080', 'example.com:8080'],
    ['joe@example.com:443', 'acct:joe@example.com:443', 'example.com:443'],
    ['acct:joe@example.com:8080', 'acct:joe@example.com:8080', 'example.com:8080'],
    // URLs: https assumed, path, query and port kept, fragment dropped
    ['example.com', 'https://example.com/', 'example.com'],
    ['example.com:8080/joe', 'https://example.com:8080/joe', 'example.com:8080'],
    ['example.com/joe?x=1#frag', 'https://example.com/joe?x=1', 'example.com'],
    ['https://example.com/joe#foo', 'https://example.com/joe', 'example.com'],
    ['https://example.com:8443/a/b?c=d#e', 'https://example.com:8443/a/b?c=d', 'example.com:8443'],
    ['HTTPS://Example.COM/Joe', 'https://example.com/Joe', 'example.com'],
    ['localhost:3000', 'https://localhost:3000/', 'localhost:3000'],
    // fragments never turn an account into a URL
    ['joe@example.com#foo', 'acct:joe@example.com', 'example.com'],
    ['acct:joe@example.com#foo', 'acct:joe@example.com', 'example.com'],
    ['ACCT:joe@example.com', 'acct:joe@example.com', 'example.com'],
    // IPv6 literals, with and without port; the host asked is in its canonical form
    ['[2001:db8::1]:8443/joe', 'https://[2001:db8::1]:8443/joe', '[2001:db8::1]:8443'],
    ['https://[2001:DB8:0:0::1]/joe', 'https://[2001:db8::1]/joe', '[2001:db8::1]'],
    ['joe@[2001:DB8::1]:8443', 'acct:joe@[2001:DB8::1]:8443', '[2001:db8::1]:8443'],
    // internationalized host: asked by its ASCII (punycode) name
    ['joe@bücher.example', 'acct:joe@bücher.example', 'xn--bcher-kva.example'],
    // surrounding spaces are trimmed
    ['  joe@example.com\n', 'acct:joe@example.com', 'example.com'],
  ])('%j → resource %s at %s', (input, resource, expectedHost) => {
    expect(normalizeIdentifier(input)).toEqual({ resource, host: expectedHost });
  });

  test(`the longest identifier accepted is ${MAX_IDENTIFIER_LENGTH} characters`, () => {
    const longest = `${'a'.repeat(MAX_IDENTIFIER_LENGTH - '@example.com'.length)}@example.com`;
    expect(normalizeIdentifier(longest).host).toBe('example.com');
    expect(() => normalizeIdentifier(`a${longest}`)).toThrow(expect.objectContaining({ code: 'invalid_identifier' }));
  });

  test('an http:// identifier is a development opt-in (allowInsecureRequests)', () => {
    expect(normalizeIdentifier('http://example.com:8080/joe', { allowInsecureRequests: true })).toEqual({ resource: 'http://example.com:8080/joe', host: 'example.com:8080' });
  });

  test('an IPv6 host is asked at https://[address]:port/.well-known/webfinger', async () => {
    const { urls, fetchImpl } = recorder();
    await discoverIssuer('alice@[2001:db8::1]:8443', { allowPrivateNetwork: true, fetchImpl });
    const url = new URL(urls[0]);
    expect(url.origin + url.pathname).toBe('https://[2001:db8::1]:8443/.well-known/webfinger');
    expect(url.searchParams.get('resource')).toBe('acct:alice@[2001:db8::1]:8443');
    expect(url.searchParams.get('rel')).toBe(ISSUER_REL);
  });
});

describe('identifiers that are refused (invalid_identifier, no request made)', () => {
  test.each<[string, unknown, RegExp]>([
    ['empty', '', /the identifier is empty/],
    ['whitespace only', ' \t\n ', /the identifier is empty/],
    ['not a string', undefined, /the identifier is empty/],
    ['a space inside', 'joe @example.com', /contains a space/],
    ['a control character', 'joe@example.com\u0000x', /control character/],
    ['a bidi override', 'joe\u202e@example.com', /control character/],
    ['markup', '<script>alert(1)</script>@example.com', /one of < >/],
    ['very long', `${'a'.repeat(5000)}@example.com`, /too long \(5012 characters, at most 512\)/],
    ['only a fragment', '#joe', /only a fragment/],
    ['an XRI (=)', '=joe', /XRI/],
    ['an XRI (@)', '@example.com', /XRI/],
    ['an XRI (!)', '!joe', /XRI/],
    ['acct: without "@"', 'acct:joe', /needs "@"/],
    ['acct: without user', 'acct:@example.com', /needs a user/],
    ['acct: without host', 'acct:joe@', /needs a host/],
    ['user@ without host', 'joe@', /needs a host/],
    ['acct: only', 'acct:', /needs "@"/],
    ['acct: with a path', 'acct:joe@example.com/x', /no path or query/],
    ['acct: with a raw "@" in the user part', 'acct:juliet@capulet.example@shopping.example.com', /%40/],
    ['acct: with a bad user part', 'acct:jo/e@example.com', /user part/],
    ['javascript:', 'javascript:alert(1)', /"javascript:" identifiers are not supported/],
    ['JavaScript: (any case)', 'JavaScript:alert(1)', /"javascript:" identifiers are not supported/],
    ['data:', 'data:text/html,hi', /"data:" identifiers are not supported/],
    ['mailto:', 'mailto:joe@example.com', /"mailto:" identifiers are not supported/],
    ['file:', 'file:///etc/passwd', /"file:" identifiers are not supported/],
    ['http:// without the opt-in', 'http://example.com/joe', /http:\/\/ identifier is refused, use https:\/\//],
    ['a URL with user and password', 'https://user:pw@example.com/joe', /must not carry a user name or password/],
    ['a URL with a user', 'https://joe@example.com/', /must not carry a user name or password/],
    ['user@host with a path (a URL with a user)', 'joe@example.com/path', /must not carry a user name or password/],
    ['a URL without host', 'https:///joe', /needs a host/],
    ['a URL with nothing after https://', 'https://', /needs a host/],
    ['https: without //', 'https:example.com', /needs a host/],
    ['an IPv6 address without brackets', '2001:db8::1', /IPv6 address must be written in brackets/],
    ['an IPv6 account host without brackets', 'joe@::1', /IPv6 address must be written in brackets/],
    ['an unclosed IPv6 bracket', 'https://[::1/joe', /the host must be a name or an IP address/],
    ['an invalid IPv6 address', 'https://[fe80::zz]/joe', /not a valid IPv6 address/],
    ['port 0', 'example.com:0', /port .* from 1 to 65535/],
    ['port 65536', 'joe@example.com:65536', /port .* from 1 to 65535/],
    ['an empty port', 'joe@example.com:', /port .* from 1 to 65535/],
    ['a host with a bad escape', 'https://exa%zzmple.com/', /not a valid host name/],
  ])('%s', async (_label, input, problem) => {
    const { urls, fetchImpl } = recorder();
    const err = await discoverIssuer(input as string, { allowPrivateNetwork: true, fetchImpl }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'WebFingerError', code: 'invalid_identifier', message: expect.stringMatching(problem) });
    // what is wrong, then what is expected; never the input's markup
    expect((err as Error).message).toContain('expected an account such as alice@example.org or acct:alice@example.org, or a URL such as https://example.org/alice');
    expect((err as Error).message).not.toMatch(/<script|alert/);
    expect(urls).toEqual([]);
  });
});

describe('hosts on the private network are refused before any request (SSRF), IPv6 included', () => {
  test.each([
    ['IPv6 loopback with port', 'alice@[::1]:8443'],
    ['IPv6 loopback URL', 'https://[::1]/alice'],
    ['IPv6 unique local', 'alice@[fd00::1]'],
    ['IPv4-mapped loopback, dotted', 'alice@[::ffff:127.0.0.1]'],
    ['IPv4-mapped loopback, hex', 'https://[::ffff:7f00:1]:8443/alice'],
    ['IPv4-mapped metadata address', 'alice@[::ffff:169.254.169.254]'],
    ['loopback as a decimal number', 'alice@2130706433'],
    ['cloud metadata address', 'https://169.254.169.254/latest'],
  ])('%s: %s', async (_label, identifier) => {
    const { urls, fetchImpl } = recorder();
    await expect(discoverIssuer(identifier, { fetchImpl })).rejects.toMatchObject({ code: 'private_network' });
    expect(urls).toEqual([]);
  });

  test('the loopback server is not reached through an IPv4-mapped IPv6 address (real HTTP client)', async () => {
    const port = host.split(':')[1];
    await expect(discoverIssuer(`alice@[::ffff:127.0.0.1]:${port}`, { allowInsecureRequests: true })).rejects.toMatchObject({ code: 'private_network' });
    await expect(discoverIssuer(`http://[::ffff:7f00:1]:${port}/alice`, { allowInsecureRequests: true })).rejects.toMatchObject({ code: 'private_network' });
    expect(seen).toEqual([]);
  });
});

describe('WebFinger answers', () => {
  test('a JRD whose subject differs from the resource is used (RFC 7033 §4.4.1 allows it); the issuer is what is checked', async () => {
    answer = (_req, res) => void res.json({ subject: 'acct:someone-else@elsewhere.example', links: [{ rel: ISSUER_REL, href: 'https://op.example' }] });
    await expect(discover(`alice@${host}`)).resolves.toBe('https://op.example');
  });

  test('the first issuer link with a string href is used; links of other rels and malformed links are skipped', async () => {
    answer = (_req, res) => void res.json({
      links: [null, 'x', { rel: 'self', href: 'https://not-the-op.example' }, { rel: ISSUER_REL, href: 42 }, { rel: ISSUER_REL, href: 'https://op.example' }, { rel: ISSUER_REL, href: 'https://second.example' }],
    });
    await expect(discover(`alice@${host}`)).resolves.toBe('https://op.example');
  });

  test.each([
    ['a JSON array', []],
    ['JSON null', null],
    ['a JSON string', 'https://op.example'],
    ['links that is not an array', { links: { rel: ISSUER_REL, href: 'https://op.example' } }],
    ['no links', { subject: 'acct:alice@example.org' }],
  ])('JSON that is not a usable JRD (%s) is a webfinger_failed', async (_label, body) => {
    answer = (_req, res) => void res.type('application/jrd+json').send(JSON.stringify(body));
    await expect(discover(`alice@${host}`)).rejects.toMatchObject({ code: 'webfinger_failed', message: expect.stringContaining('names no OpenID Provider') });
  });

  test('a body that is not JSON is a webfinger_failed', async () => {
    answer = (_req, res) => void res.type('application/jrd+json').send('{"links": [');
    await expect(discover(`alice@${host}`)).rejects.toMatchObject({ code: 'webfinger_failed' });
  });

  test('an endless answer without Content-Length is cut at 64 KiB', async () => {
    let written = 0;
    answer = (_req, res) => {
      res.type('application/jrd+json');
      res.write('{"links":[');
      const more = (): void => {
        while (written < 4 * 1024 * 1024 && !res.destroyed) {
          written += 16 * 1024;
          if (!res.write(`${'{"rel":"x"},'.repeat(1365)}`)) return void res.once('drain', more);
        }
        res.end('{}]}');
      };
      more();
    };
    await expect(discover(`alice@${host}`)).rejects.toMatchObject({ code: 'webfinger_failed', message: 'the WebFinger answer is larger than 65536 bytes' });
  });

  test.each([301, 302, 307, 308])('a %i redirect to a private host is not followed: the target receives nothing', async (status) => {
    let hits = 0;
    const target = await new Promise<Server>((resolve) => {
      const s = express().use((_req, res) => { hits += 1; res.json({ links: [{ rel: ISSUER_REL, href: 'https://evil.example' }] }); }).listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      answer = (_req, res) => void res.redirect(status, `http://127.0.0.1:${(target.address() as AddressInfo).port}/.well-known/webfinger`);
      await expect(discover(`alice@${host}`)).rejects.toMatchObject({ code: 'webfinger_failed', message: expect.stringContaining(`answered HTTP ${status}`) });
      expect(hits).toBe(0);
    } finally {
      target.closeAllConnections();
      target.close();
    }
  });
});
