/**
 * OpenID Connect RP certification, Config / Dynamic RP: the WebFinger cases the other suites do
 * not name (rp-discovery-webfinger-unknown-member, and the rel chosen among several links),
 * against a small WebFinger server on loopback (the answers are shaped by the test).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { ISSUER_REL, discoverIssuer } from '../src/discovery/webfinger.js';

let server: Server;
let host = '';
let answer: (req: express.Request, res: express.Response) => void = () => undefined;
const resources: string[] = [];
// https as far as the code under test knows; the test server speaks plain http on loopback
const overTls = ((url: string, init: RequestInit) => fetch(url.replace(/^https:/, 'http:'), init)) as typeof fetch;
const discover = (identifier: string) => discoverIssuer(identifier, { allowPrivateNetwork: true, fetchImpl: overTls });

beforeAll(async () => {
  const app = express();
  app.get('/.well-known/webfinger', (req, res) => {
    resources.push(String(req.query.resource));
    answer(req, res);
  });
  server = await new Promise<Server>((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
beforeEach(() => {
  resources.length = 0;
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
  expect(resources).toEqual([`acct:alice@${host}`]);
});

test('rp-discovery-webfinger-acct: the resource asked for is the acct: URI of the identifier', async () => {
  answer = (_req, res) => void res.json({ links: [{ rel: ISSUER_REL, href: 'https://op.example' }] });
  await discover(`acct:alice@${host}`);
  expect(resources).toEqual([`acct:alice@${host}`]);
});

test('rp-discovery-webfinger-url: a URL identifier is asked for as itself', async () => {
  answer = (_req, res) => void res.json({ links: [{ rel: ISSUER_REL, href: 'https://op.example' }] });
  await discover(`https://${host}/joe`);
  expect(resources).toEqual([`https://${host}/joe`]);
});

test('rp-discovery-webfinger-http-href: an http:// issuer in the answer is refused without the development opt-in', async () => {
  answer = (_req, res) => void res.json({ links: [{ rel: ISSUER_REL, href: 'http://op.example' }] });
  await expect(discover(`alice@${host}`)).rejects.toMatchObject({ code: 'webfinger_failed' });
});
