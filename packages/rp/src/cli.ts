#!/usr/bin/env node
/** The `openid-express` command (package.json "bin"): `openid-express doctor --app ./app.js`. See ./doctor/cli.ts. */
import net from 'node:net';
import { main } from './doctor/cli.js';

// The imported app must not take the port of the app already running (EADDRINUSE): while the doctor
// runs, any listen() gets a free loopback port instead (its callback still runs).
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnFreePort(this: net.Server, ...args: unknown[]) {
  return listen.call(this, { port: 0, host: '127.0.0.1' }, args.find((a) => typeof a === 'function') as (() => void) | undefined);
} as typeof listen;

main(process.argv.slice(2), { out: (t) => console.log(t), err: (t) => console.error(t) }).then(
  // the imported app may hold the event loop open (a server, a Redis client): exit when done
  (code) => process.stdout.write('', () => process.exit(code)),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
