import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Workspace packages export their TypeScript sources under this condition and their build (dist/)
// otherwise (scripts/build.ts): tests run against the sources, with no build step. Processes the
// tests spawn (`node --import tsx services/…/main.ts`) reach the sources through tsconfig.json's
// `paths`, which tsx follows.
const SOURCE_CONDITION = 'openagents-source';

export default defineConfig({
  resolve: { conditions: [SOURCE_CONDITION, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [SOURCE_CONDITION, ...defaultServerConditions] } },
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
