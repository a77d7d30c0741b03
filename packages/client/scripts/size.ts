/**
 * Bundle sizes of the browser packages: esbuild bundles each entry for the browser (ESM,
 * minified, tree-shaken), then the output is gzipped. Prints a Markdown table.
 *
 *   node --import tsx packages/client/scripts/size.ts
 */
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../../..', import.meta.url));

interface Target {
  name: string;
  entry: string;
  external: string[];
}

const targets: Target[] = [
  {
    name: '@openagents/sync-client (all included: protocol, zod, idb-keyval)',
    entry: 'packages/client/src/index.ts',
    external: [],
  },
  { name: '@openagents/sync-client, zod external', entry: 'packages/client/src/index.ts', external: ['zod'] },
  {
    name: '@openagents/sync-react (react, zustand, sync-client external)',
    entry: 'packages/react/src/index.ts',
    external: [
      'react',
      'react-dom',
      'zustand',
      '@openagents/sync-client',
      '@openagents/sync-protocol',
      'zod',
    ],
  },
  {
    name: '@openagents/sync-react + sync-client (react, zustand external)',
    entry: 'packages/react/src/index.ts',
    external: ['react', 'react-dom', 'zustand'],
  },
];

const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
console.log('| bundle | minified | min + gzip |');
console.log('| --- | ---: | ---: |');
for (const t of targets) {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [t.entry],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    external: t.external,
    write: false,
    logLevel: 'error',
  });
  const code = result.outputFiles[0]!.contents;
  console.log(`| ${t.name} | ${kb(code.length)} | ${kb(gzipSync(code, { level: 9 }).length)} |`);
}
