import { defineConfig } from 'vitest/config';

// One runner for the whole monorepo. Files that need a real Postgres or Redis carry a
// second suffix (`*.pg.test.ts`, `*.redis.test.ts`, `*.stack.test.ts`, `*.browser.test.ts`)
// so they can be picked out: `npx vitest run --project unit`.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['{packages,services,loadtest,test,deploy}/**/*.test.{ts,tsx}'],
          exclude: ['**/node_modules/**', '**/*.{pg,redis,stack,browser}.test.{ts,tsx}'],
          environment: 'node',
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['{packages,services,loadtest,test}/**/*.{pg,redis}.test.{ts,tsx}'],
          exclude: ['**/node_modules/**'],
        },
      },
      {
        extends: true,
        test: {
          name: 'stack',
          include: ['{packages,services,loadtest,test}/**/*.{stack,browser}.test.{ts,tsx}'],
          exclude: ['**/node_modules/**'],
          fileParallelism: false,
        },
      },
    ],
  },
});
