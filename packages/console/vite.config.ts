import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The console's browser build. No React plugin: Vite 8's oxc transform compiles TSX with the
 * automatic JSX runtime, which is all React 19 needs (no fast refresh in dev, which we do not use).
 */
export default defineConfig(({ command }) => ({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'react' } },
  // A build is always a production build, even when started from a process whose NODE_ENV says
  // otherwise (vitest sets `test`, which would otherwise bundle React's development build).
  ...(command === 'build' ? { define: { 'process.env.NODE_ENV': JSON.stringify('production') } } : {}),
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
  },
}));
