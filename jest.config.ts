/** @jest-config-loader-options {"transpileOnly": true, "compilerOptions": {"module": "CommonJS", "moduleResolution": "Node10"}} */
import { availableParallelism } from 'node:os';
import { createJsWithTsPreset, type JestConfigWithTsJest } from 'ts-jest';

const preset = createJsWithTsPreset({ tsconfig: '<rootDir>/tsconfig.jest.json' });

const config: JestConfigWithTsJest = {
  ...preset,
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/test', '<rootDir>/examples'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transformIgnorePatterns: [
    '/node_modules/(?!(\\.pnpm|openid-client|oauth4webapi|jose|oidc-provider|@koa|koa|quick-lru|nanoid|eta)/)',
  ],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    '^@openid-express/rp$': '<rootDir>/packages/rp/src/index.ts',
    '^@openid-express/op$': '<rootDir>/packages/op/src/index.ts',
  },
  testTimeout: 30000,
  // jest's default (one worker per core but one) runs the files one at a time on a 2-core VM, where
  // most of a file's time is waiting (the OP, Redis, Chromium, timers): two workers there take the
  // suite from about 10 to about 6 minutes, and every test passes under that load
  maxWorkers: Math.max(2, availableParallelism() - 1),
  // a worker whose main thread is blocked gets no testTimeout: the watchdog names its file and ends the run
  reporters: ['default', '<rootDir>/scripts/jest-watchdog.cjs'],
};

export default config;
