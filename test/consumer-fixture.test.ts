/**
 * The published packages as a consumer gets them: protocol, client and react are built
 * (scripts/build.ts), packed with `npm pack`, and installed from the tarballs into a fresh project
 * outside the workspace, whose other dependencies (react, zustand, zod, …) are linked from this
 * repo's node_modules, so nothing is fetched. That project type-checks a small React app
 * (test/consumer-fixture/app.tsx) and the TypeScript examples of the docs with the strictest
 * common settings — library declarations included (`skipLibCheck: false`) — once with
 * `moduleResolution: NodeNext` and once with `Bundler`, bundles the app with esbuild, and imports
 * the packages in plain Node.
 *
 * Doc examples: every ```ts / ```tsx block of DOC_FILES is compiled as its own module, with the
 * names the examples take as given (`client`, `orgId`, `llm`, …) declared in DOC_GLOBALS and a
 * line holding only `…` read as elided code. Mark a block that is not meant to compile (a shape
 * sketch) with ```ts nocompile.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJs, buildTypes, ROOT, WORKSPACES } from '../scripts/build';

const run = promisify(execFile);

const PUBLISHED = WORKSPACES.filter((ws) => ws.publish);
const DOC_FILES = ['README.md', 'docs/client.md', 'packages/client/README.md', 'packages/react/README.md'];

/** Third-party packages the fixture links from the repo (the published packages' deps and peers). */
const LINKED = ['react', 'react-dom', 'zustand', 'zod', 'idb-keyval', '@types/react', '@types/react-dom'];

const DOC_GLOBALS = `import type { SyncClient } from '@openagents/sync-client';
import type { JSX } from 'react';
declare global {
  const client: SyncClient;
  const root: { render(node: JSX.Element): void };
  function App(): JSX.Element;
  const userId: string;
  const orgId: string;
  const agentId: string;
  const agent_id: string;
  const id: string;
  const messageId: string;
  const llm: AsyncIterable<string>;
  function render(value: unknown): void;
}
export {};
`;

const STRICTEST = {
  target: 'ES2022',
  lib: ['ES2023', 'DOM', 'DOM.Iterable'],
  jsx: 'react-jsx',
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  noImplicitReturns: true,
  noFallthroughCasesInSwitch: true,
  useUnknownInCatchVariables: true,
  isolatedModules: true,
  verbatimModuleSyntax: true,
  skipLibCheck: false,
  types: [],
  noEmit: true,
};

const MATRIX = {
  NodeNext: { module: 'NodeNext', moduleResolution: 'NodeNext' },
  Bundler: { module: 'Preserve', moduleResolution: 'Bundler' },
} as const;

interface PackEntry {
  name: string;
  filename: string;
  files: { path: string }[];
}

/** ```ts / ```tsx blocks of a Markdown file, with the line each starts on. */
function codeBlocks(markdown: string): { line: number; lang: 'ts' | 'tsx'; code: string }[] {
  const blocks: { line: number; lang: 'ts' | 'tsx'; code: string }[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(tsx?)(\s.*)?$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!);
    if (/\bnocompile\b/.test(open[2] ?? '')) continue;
    const code = body.map((l) => (/^\s*…\s*$/.test(l) ? l.replace('…', '// …') : l)).join('\n');
    blocks.push({ line: start + 1, lang: open[1] as 'ts' | 'tsx', code });
  }
  return blocks;
}

let work: string;
let project: string;
let packed: PackEntry[];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'oa-consumer-'));
  project = join(work, 'app');
  const tarballs = join(work, 'tarballs');
  mkdirSync(tarballs);

  // 1. Build and pack exactly what `npm publish` would upload.
  await Promise.all(PUBLISHED.map((ws) => buildJs(ws)));
  buildTypes(PUBLISHED);
  const { stdout } = await run(
    'npm',
    [
      'pack',
      '--json',
      '--ignore-scripts',
      '--pack-destination',
      tarballs,
      ...PUBLISHED.flatMap((ws) => ['-w', ws.dir]),
    ],
    { cwd: ROOT, env: { ...process.env, npm_config_loglevel: 'error' } },
  );
  packed = JSON.parse(stdout) as PackEntry[];

  // 2. A fresh project: the tarballs installed by npm, everything else linked, nothing fetched.
  mkdirSync(join(project, 'src'), { recursive: true });
  const dependencies: Record<string, string> = {};
  for (const p of packed) dependencies[p.name] = `file:${join(tarballs, p.filename)}`;
  for (const name of LINKED) dependencies[name] = `file:${join(ROOT, 'node_modules', name)}`;
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies }, null, 2),
  );
  await run(
    'npm',
    [
      'install',
      '--offline',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      '--install-links=false',
    ],
    { cwd: project, env: { ...process.env, npm_config_loglevel: 'error' } },
  );

  // 3. The app and the doc examples.
  cpSync(join(ROOT, 'test/consumer-fixture/app.tsx'), join(project, 'src/app.tsx'));
  writeFileSync(join(project, 'src/doc-globals.d.ts'), DOC_GLOBALS);
  for (const doc of DOC_FILES) {
    for (const block of codeBlocks(readFileSync(join(ROOT, doc), 'utf8'))) {
      const file = `doc-${doc.replace(/[/.]/g, '_')}-L${block.line}.${block.lang}`;
      writeFileSync(join(project, 'src', file), `// ${doc}:${block.line}\n${block.code}\nexport {};\n`);
    }
  }
  for (const [name, options] of Object.entries(MATRIX)) {
    writeFileSync(
      join(project, `tsconfig.${name}.json`),
      JSON.stringify({ compilerOptions: { ...STRICTEST, ...options }, include: ['src'] }, null, 2),
    );
  }
  // tsc from the repo (the fixture links no compiler): point its lib folder at the project.
  symlinkSync(join(ROOT, 'node_modules/typescript'), join(project, 'node_modules/typescript'), 'dir');
}, 240_000);

afterAll(() => {
  // CONSUMER_FIXTURE_KEEP=1 leaves the project in place to look into a failure.
  if (work && !process.env.CONSUMER_FIXTURE_KEEP) rmSync(work, { recursive: true, force: true });
});

describe('published packages', () => {
  it('pack the build, the licence and the changelog, and no sources or tests', () => {
    expect(packed.map((p) => p.name).sort()).toEqual(
      ['@openagents/sync-client', '@openagents/sync-protocol', '@openagents/sync-react'].sort(),
    );
    for (const p of packed) {
      const files = p.files.map((f) => f.path);
      expect(files, p.name).toEqual(
        expect.arrayContaining([
          'package.json',
          'LICENSE',
          'CHANGELOG.md',
          'dist/index.js',
          'dist/types/index.d.ts',
        ]),
      );
      expect(
        files.filter((f) => f.startsWith('src/') || /\.test\./.test(f)),
        p.name,
      ).toEqual([]);
      const manifest = JSON.parse(
        readFileSync(join(project, 'node_modules', p.name, 'package.json'), 'utf8'),
      ) as Record<string, unknown>;
      expect(manifest.private, p.name).toBeUndefined();
      expect(manifest.license, p.name).toBe('MIT');
      expect(manifest.sideEffects, p.name).toBe(false);
    }
  });

  it('read doc blocks: ts/tsx only, `nocompile` skipped, a lone … taken as elided code', () => {
    const md = [
      '```ts',
      'a();',
      '  …',
      '```',
      '```ts nocompile',
      '{ x }',
      '```',
      '```sh',
      'ls',
      '```',
      '```tsx',
      '<b />',
      '```',
    ];
    expect(codeBlocks(md.join('\n'))).toEqual([
      { line: 1, lang: 'ts', code: 'a();\n  // …' },
      { line: 11, lang: 'tsx', code: '<b />' },
    ]);
  });

  it('compiles at least one example from each of the client and react docs', () => {
    const blocks = DOC_FILES.flatMap((doc) => codeBlocks(readFileSync(join(ROOT, doc), 'utf8')));
    expect(blocks.filter((b) => b.code.includes('@openagents/sync-client')).length).toBeGreaterThan(0);
    expect(blocks.filter((b) => b.code.includes('@openagents/sync-react')).length).toBeGreaterThan(0);
  });

  // Concurrent: each is one tsc process, mostly reading declarations.
  it.concurrent.for(Object.keys(MATRIX))(
    'type-check the app and the doc examples with moduleResolution %s',
    { timeout: 180_000 },
    async (name, { expect }) => {
      const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
      const result = await run(process.execPath, [tsc, '-p', `tsconfig.${name}.json`, '--pretty', 'false'], {
        cwd: project,
      }).then(
        () => '',
        (error: { stdout?: string }) => error.stdout ?? String(error),
      );
      expect(result).toBe('');
    },
  );

  it('bundle the app with esbuild from dist/, and report min+gzip sizes', async () => {
    const result = await build({
      absWorkingDir: project,
      entryPoints: ['src/app.tsx'],
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      jsx: 'automatic',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    const inputs = Object.keys(result.metafile.inputs);
    for (const name of ['sync-protocol', 'sync-client', 'sync-react']) {
      expect(inputs, name).toContain(`node_modules/@openagents/${name}/dist/index.js`);
    }
    expect(inputs.filter((i) => i.includes('@openagents/') && !i.includes('/dist/'))).toEqual([]);

    // What an app pays for each package, as installed: minified, tree-shaken, gzip level 9.
    const size = async (code: string, external: string[]) => {
      const out = await build({
        absWorkingDir: project,
        stdin: { contents: code, resolveDir: project, loader: 'ts' },
        bundle: true,
        minify: true,
        format: 'esm',
        platform: 'browser',
        target: 'es2022',
        external,
        write: false,
        logLevel: 'silent',
      });
      const bytes = out.outputFiles[0]!.contents;
      return { min: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
    };
    const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
    const rows = {
      'sync-client (protocol, zod, idb-keyval included)': await size(
        "export * from '@openagents/sync-client';",
        [],
      ),
      'sync-react (react, zustand, sync-client external)': await size(
        "export * from '@openagents/sync-react';",
        ['react', 'react-dom', 'zustand', '@openagents/sync-client', '@openagents/sync-protocol'],
      ),
      'sync-react + sync-client (react, zustand external)': await size(
        "export * from '@openagents/sync-react'; export * from '@openagents/sync-client';",
        ['react', 'react-dom', 'zustand'],
      ),
      'the fixture app (react, react-dom included)': {
        min: result.outputFiles[0]!.contents.length,
        gzip: gzipSync(result.outputFiles[0]!.contents, { level: 9 }).length,
      },
    };
    for (const [what, s] of Object.entries(rows)) {
      console.log(`bundle size from the tarballs: ${what}: ${kib(s.min)} min, ${kib(s.gzip)} min+gzip`);
      expect(s.gzip).toBeGreaterThan(0);
    }
  }, 60_000);

  it('import in plain Node from the tarballs (ESM, no TypeScript loader)', async () => {
    const script = `
      const protocol = await import('@openagents/sync-protocol');
      const client = await import('@openagents/sync-client');
      const react = await import('@openagents/sync-react');
      const parsed = protocol.Scope.safeParse('org:acme');
      console.log(JSON.stringify({
        scope: parsed.success,
        client: typeof client.createSyncClient,
        react: typeof react.useAgentSync,
      }));`;
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: project,
      env,
    });
    expect(JSON.parse(stdout)).toEqual({ scope: true, client: 'function', react: 'function' });
  }, 60_000);
});
