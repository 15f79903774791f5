// Preloaded (`node --import`) into the README's programs by test/readme-snippets.test.ts, so that they
// run exactly as written: a program's `app.listen(3000)` listens on the port that
// README_SNIPPET_PORTS maps 3000 to (`{"3000": 0}`: a free one), and every server that starts
// listening prints `[readme-snippet] listening on <asked> -> <port>` to stderr for the test to read.
import net from 'node:net';

const ports = JSON.parse(process.env.README_SNIPPET_PORTS || '{}');
const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
  let asked = args[0];
  if (typeof asked === 'object' && asked !== null) {
    asked = asked.port;
    if (asked !== undefined && String(asked) in ports) args[0] = { ...args[0], port: ports[asked] };
  } else if (asked !== undefined && String(asked) in ports) {
    args[0] = ports[asked];
  }
  this.once('listening', () => {
    const address = this.address();
    process.stderr.write(`[readme-snippet] listening on ${asked} -> ${typeof address === 'string' ? address : address?.port}\n`);
  });
  return listen.apply(this, args);
};
