import express from 'express';
import request from 'supertest';
import { ISSUER_REL, memoryAccounts, webfinger } from '@openid-express/op';

const issuer = 'https://id.example.com/op';
const accounts = memoryAccounts([
  { id: 'alice', username: 'alice', password: 'pw-pw-pw', claims: { email: 'alice@example.org' } },
]);
const app = express().use(webfinger({ issuer, accounts }));
const finger = (query: Record<string, string | string[]>) => request(app).get('/.well-known/webfinger').query(query);

describe('webfinger({ accounts }) answers for the accounts it knows', () => {
  test('acct: of a known user at the issuer host points at the issuer', async () => {
    const res = await finger({ resource: 'acct:alice@id.example.com', rel: ISSUER_REL });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('application/jrd+json');
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(JSON.parse(res.text)).toEqual({ subject: 'acct:alice@id.example.com', links: [{ rel: ISSUER_REL, href: issuer }] });
  });

  test('acct: with a known email address works too', async () => {
    const res = await finger({ resource: 'acct:alice@example.org' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).links[0].href).toBe(issuer);
  });

  test('an https: resource of a known user at the issuer host points at the issuer', async () => {
    const res = await finger({ resource: 'https://id.example.com/alice', rel: ISSUER_REL });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).subject).toBe('https://id.example.com/alice');
  });

  test('the issuer\'s host alone (Discovery §2.2.3: "id.example.com" typed, normalised to https://id.example.com/) points at the issuer, with or without a store; another host, a path or a query does not (certification probe F2)', async () => {
    for (const target of [app, express().use(webfinger({ issuer }))]) {
      const res = await request(target).get('/.well-known/webfinger').query({ resource: 'https://id.example.com/', rel: ISSUER_REL });
      expect(res.status).toBe(200); // before: 404 unknown resource
      expect(JSON.parse(res.text)).toEqual({ subject: 'https://id.example.com/', links: [{ rel: ISSUER_REL, href: issuer }] });
    }
    for (const resource of ['https://elsewhere.example/', 'https://id.example.com/?x=1', 'http://id.example.com/', 'https://u:p@id.example.com/', 'https://id.example.com:8443/']) {
      expect([resource, (await finger({ resource })).status]).toEqual([resource, 404]);
    }
  });

  test('unknown users get 404, whatever the form of the resource', async () => {
    for (const resource of ['acct:mallory@id.example.com', 'acct:alice@elsewhere.example', 'https://elsewhere.example/alice',
      'https://id.example.com/mallory', 'mailto:alice@example.org', 'acct:@id.example.com']) {
      const res = await finger({ resource });
      expect([resource, res.status]).toEqual([resource, 404]);
    }
  });

  test('another rel gets the subject without the issuer link', async () => {
    const res = await finger({ resource: 'acct:alice@id.example.com', rel: 'http://webfinger.net/rel/avatar' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).links).toEqual([]);
  });

  test('a request without a resource is a 400 with a reason', async () => {
    const res = await request(app).get('/.well-known/webfinger');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    const twice = await finger({ resource: ['acct:alice@id.example.com', 'acct:bob@id.example.com'] });
    expect(twice.status).toBe(400);
  });

  test('a malformed percent-escape in an https: resource is a 404, not a 500', async () => {
    for (const resource of ['https://id.example.com/%zz', 'https://id.example.com/%E0%A4%A', 'https://id.example.com/%']) {
      const res = await finger({ resource });
      expect([resource, res.status, res.body.error]).toEqual([resource, 404, 'not_found']);
    }
  });
});

describe('webfinger() without accounts: the same answer whether or not an account exists (RFC 7033 §9.2)', () => {
  const open = express().use(webfinger({ issuer }));
  const ask = (resource: string, host = 'id.example.com') => request(open).get('/.well-known/webfinger').set('host', host).query({ resource, rel: ISSUER_REL });

  test('any account name at the issuer\'s host, or at the host asked, gets the issuer: an existing one and a made-up one alike', async () => {
    const answers = [];
    for (const [resource, host] of [['acct:alice@id.example.com'], ['acct:no-such-user@id.example.com'], ['https://id.example.com/no-such-user'],
      ['acct:alice@example.org', 'example.org'], ['acct:nobody@example.org', 'example.org']] as Array<[string, string?]>) {
      const res = await ask(resource, host);
      expect([resource, res.status]).toEqual([resource, 200]);
      answers.push(JSON.parse(res.text).links);
    }
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(answers[0]).toEqual([{ rel: ISSUER_REL, href: issuer }]);
  });

  test('a domain this server is not asked for, or a resource that names no account, is 404', async () => {
    for (const resource of ['acct:alice@elsewhere.example', 'https://elsewhere.example/alice', 'mailto:alice@id.example.com', 'acct:@id.example.com', 'https://id.example.com/a/b']) {
      const res = await ask(resource);
      expect([resource, res.status]).toEqual([resource, 404]);
    }
  });
});

test('webfinger() without accounts, asked without a Host header (HTTP/1.0): only the issuer\'s host is answered', async () => {
  const { createServer } = await import('node:http');
  const { connect } = await import('node:net');
  const server = createServer(express().use(webfinger({ issuer }))).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as { port: number };
  const ask = (resource: string) => new Promise<number>((resolve, reject) => {
    let answer = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET /.well-known/webfinger?resource=${encodeURIComponent(resource)} HTTP/1.0\r\n\r\n`));
    socket.on('data', (chunk) => (answer += chunk));
    socket.on('end', () => resolve(Number(answer.split(' ')[1])));
    socket.on('error', reject);
  });
  try {
    expect(await ask('acct:someone@gmail.com')).toBe(404);
    expect(await ask('acct:someone@id.example.com')).toBe(200);
  } finally {
    server.close();
  }
});

test('an internationalised domain is one domain however it is written (IDNA: U-label or A-label); an acct: user part is percent-decoded (RFC 7565 §7)', async () => {
  const idn = 'https://xn--bcher-kva.example/op';
  const open = express().use(webfinger({ issuer: idn }));
  for (const resource of ['acct:zoe@bücher.example', 'acct:zoe@xn--bcher-kva.example', 'acct:zoe@BÜCHER.example']) {
    const res = await request(open).get('/.well-known/webfinger').set('host', 'xn--bcher-kva.example').query({ resource });
    expect([resource, res.status]).toEqual([resource, 200]);
  }
  const known = memoryAccounts([
    { id: 'zoe', username: 'zoë', password: 'pw-pw-pw' },
    { id: 'juliet', username: 'juliet', password: 'pw-pw-pw', claims: { email: 'juliet@capulet.example' } },
  ]);
  const app2 = express().use(webfinger({ issuer, accounts: known }));
  for (const resource of ['acct:zo%C3%AB@id.example.com', 'acct:juliet%40capulet.example@id.example.com', 'acct:zoë@id.example.com']) {
    const res = await request(app2).get('/.well-known/webfinger').query({ resource });
    expect([resource, res.status]).toEqual([resource, 200]);
  }
  expect((await request(app2).get('/.well-known/webfinger').query({ resource: 'acct:zo%zz@id.example.com' })).status).toBe(404);
});

test('an account\'s e-mail at an internationalised domain is found however the domain is written; a host with anything else in it names nobody', async () => {
  const known = memoryAccounts([
    { id: 'zoe', username: 'zoe', password: 'pw-pw-pw', claims: { email: 'zoe@bücher.example' } },
    { id: 'max', username: 'max', password: 'pw-pw-pw', claims: { email: 'max@xn--mnchen-3ya.example' } },
  ]);
  const app2 = express().use(webfinger({ issuer, accounts: known }));
  for (const resource of ['acct:zoe@bücher.example', 'acct:zoe@xn--bcher-kva.example', 'acct:max@xn--mnchen-3ya.example', 'acct:max@münchen.example']) {
    const res = await request(app2).get('/.well-known/webfinger').query({ resource });
    expect([resource, res.status]).toEqual([resource, 200]);
  }
  const open = express().use(webfinger({ issuer }));
  for (const resource of ['acct:alice@id.example.com/..', 'acct:alice@id.example.com/.', 'acct:alice@id.example.com\\', 'acct:alice@id.example.com#x',
    'acct:alice@id.example.com?', 'acct:alice@id%2eexample.com']) {
    for (const app of [open, app2]) {
      const res = await request(app).get('/.well-known/webfinger').set('host', 'id.example.com').query({ resource });
      expect([resource, res.status]).toEqual([resource, 404]);
    }
  }
});
