// `npm run demo`: install, build, then start examples/quickstart (an OP and an app that signs in with it).
// PORT and OP_PORT choose the ports (default 3000 and 3001).
import { installDependencies, build } from './setup.mjs';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  console.error(`The demo needs Node.js 20.19 or newer; this is ${process.version}.`);
  process.exit(1);
}

try {
  await installDependencies();
  build();
} catch {
  console.error('\nThe demo could not be installed or built: the output above says why.');
  process.exit(1);
}
console.log('$ node examples/quickstart/main.js');
await import('../examples/quickstart/main.js');
