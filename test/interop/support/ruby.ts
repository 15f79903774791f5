/**
 * Runs test/interop/support/ruby-openid-connect.rb, a driver of nov's openid_connect gem, as one
 * Ruby process (the gem takes over a second to load): one JSON command per line in, one JSON answer
 * per line out (the gem's errors as `{ error, message, status }`).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const RUBY = '/usr/bin/ruby';
const INSTALL = 'apt-get install -y ruby-openid-connect';
const DRIVER = join(__dirname, 'ruby-openid-connect.rb');
const HOW = `install it with\n  apt-get update && ${INSTALL}`;

export type RubyAnswer = Record<string, unknown> & { error?: string; message?: string; status?: number | null };

export interface RubyDriver {
  /**
   * Runs one command; rejects when Ruby dies, answers no JSON within 15 s, or cannot load the gem
   * (then with the install line: the test fails, never skips).
   */
  run(command: Record<string, unknown>): Promise<RubyAnswer>;
  stop(): Promise<void>;
}

/** Starts the driver; throws (never skips) with the install line when Ruby is missing. */
export function startRuby(): RubyDriver {
  if (!existsSync(RUBY)) throw new Error(`missing ${RUBY}: ${HOW}`);
  const child = spawn(RUBY, [DRIVER], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-4000); });
  const exited = new Promise<void>((resolve) => {
    child.on('close', () => resolve());
    child.on('error', (err) => { stderr += err.message; resolve(); });
  });
  child.stdin.on('error', () => {}); // a write after Ruby died: reported by the waiters below
  // answers come in the order of the commands: one waiter per command sent
  const waiters: Array<(line: string | Error) => void> = [];
  createInterface({ input: child.stdout }).on('line', (line) => waiters.shift()?.(line));
  void exited.then(() => {
    for (const waiter of waiters.splice(0)) waiter(new Error(`${RUBY} ${DRIVER} exited (${child.exitCode ?? child.signalCode}): ${stderr}`));
  });

  return {
    run(command) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill(); // its late answer would go to the next command
          reject(new Error(`no answer from the Ruby driver in 15 s to ${String(command.cmd)}: ${stderr}`));
        }, 15_000);
        waiters.push((line) => {
          clearTimeout(timer);
          if (line instanceof Error) return reject(line);
          let answer: RubyAnswer;
          try {
            answer = JSON.parse(line) as RubyAnswer;
          } catch {
            return reject(new Error(`the Ruby driver answered no JSON: ${line}\n${stderr}`));
          }
          if (answer.error === 'LoadError') return reject(new Error(`the openid_connect gem is missing (${answer.message}): ${HOW}`));
          resolve(answer);
        });
        child.stdin.write(`${JSON.stringify(command)}\n`);
      });
    },
    async stop() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill(), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
