/**
 * examples/cluster started as a user would (`node examples/cluster/main.js`): it starts its own
 * redis-server, 2 OP + 2 RP instances and two proxies, says where to go, and stops cleanly.
 * The behaviour of the deployment itself is test/cluster/.
 */
import { execFileSync } from 'node:child_process';
import { runScript, type RunningScript } from './run-script.js';

jest.setTimeout(90_000);

let script: RunningScript | undefined;
afterEach(async () => {
  if (script?.child.exitCode === null && script.child.signalCode === null) script.child.kill('SIGKILL');
});

const childrenOf = (pid: number): number[] => {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
};
const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('one command starts Redis, 2 OP + 2 RP instances and both proxies, and Ctrl+C stops them all', async () => {
  const started = await runScript('examples/cluster/main.js', { REDIS_URL: '', ECHO: '' }, /Press Ctrl\+C to stop/);
  script = started.script;
  const output = script.output();
  const app = output.match(/Application:\s+(http:\/\/localhost:\d+)/)?.[1];
  const issuer = output.match(/OP issuer:\s+(http:\/\/127\.0\.0\.1:\d+\/op)/)?.[1];
  expect({ app, issuer }).toEqual({ app: expect.any(String), issuer: expect.any(String) });
  expect(output).toMatch(/Sign in as alice \/ wonderland/);

  // 2 OP + 2 RP instances and the throw-away redis-server are its children
  const children = childrenOf(script.child.pid!);
  expect(children).toHaveLength(5);

  const discovery = await fetch(`${issuer}/.well-known/openid-configuration`);
  expect(discovery.status).toBe(200);
  expect((await discovery.json()).issuer).toBe(issuer);

  const pids = new Set<number>();
  for (let i = 0; i < 4; i += 1) {
    const home = await fetch(`${app}/`);
    expect(home.status).toBe(200);
    const html = await home.text();
    expect(html).toContain('/auth/login/op');
    pids.add(Number(html.match(/process id <code>(\d+)<\/code>/)?.[1]));
  }
  expect(pids.size).toBe(2); // round robin over the two RP instances

  const login = await fetch(`${app}/auth/login/op?returnTo=/`, { redirect: 'manual' });
  expect(login.status).toBe(302);
  expect(login.headers.get('location')?.startsWith(`${issuer}/auth?`)).toBe(true);

  const exited = new Promise<number | null>((resolve) => script!.child.once('exit', (code) => resolve(code)));
  script.child.kill('SIGINT');
  expect(await exited).toBe(0);
  await new Promise((r) => setTimeout(r, 200));
  expect(children.filter(isRunning)).toEqual([]);
});
