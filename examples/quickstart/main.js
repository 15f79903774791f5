// `npm run demo` ends here: start the quickstart and say what to open. Ctrl+C stops it.
import { startQuickstart } from './index.js';

const port = (name, fallback) => {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`${name} must be a port number (0-65535), got "${value}".`);
    process.exit(1);
  }
  return n;
};

let qs;
try {
  qs = await startQuickstart({ port: port('PORT', 3000), opPort: port('OP_PORT', 3001) });
} catch (err) {
  console.error(err.code === 'EADDRINUSE' ? err.message : err);
  process.exit(1);
}

const width = Math.max(...qs.accounts.map((a) => a.username.length));
const pwidth = Math.max(...qs.accounts.map((a) => a.password.length));
console.log(`
  Quickstart is running.

  Application:  ${qs.appURL}
  Demo OP:      ${qs.issuer}

  Demo accounts (username / password):
${qs.accounts.map((a) => `    ${a.username.padEnd(width)}  ${a.password.padEnd(pwidth)}  (${a.claims.name})`).join('\n')}

  Open ${qs.appURL} in your browser. Press Ctrl+C to stop.
`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    qs.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
