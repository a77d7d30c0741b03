import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig } from 'vite';

/**
 * The console's browser build. No React plugin: Vite 8's oxc transform compiles TSX with the
 * automatic JSX runtime, which is all React 19 needs (no fast refresh in dev, which we do not use).
 */
export default defineConfig(({ command }) => ({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  // Bundle the workspace packages (client, react, protocol) from their sources, not their dist/:
  // no build step needed first, and the build is fresh exactly when those sources are older.
  resolve: { conditions: ['openagents-source', ...defaultClientConditions] },
  logLevel: 'warn',
  // A build is always a production build, even when started from a process whose NODE_ENV says
  // otherwise (vitest sets `test`): both the JSX transform (jsx vs jsxDEV) and React's own entry
  // points follow NODE_ENV, and a mix of the two does not run.
  oxc: { jsx: { runtime: 'automatic', importSource: 'react', development: command !== 'build' } },
  ...(command === 'build' ? { define: { 'process.env.NODE_ENV': JSON.stringify('production') } } : {}),
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
  },
}));
