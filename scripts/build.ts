/**
 * `npm run build` — compiles every workspace package and service to JavaScript, next to its
 * sources, so production runs `node dist/…` with no TypeScript loader, and the publishable
 * packages (protocol, client, react) ship ESM with `.d.ts`.
 *
 * - JavaScript: esbuild bundles each entry of a workspace (`src/index.ts`, and `src/main.ts` or
 *   the CLIs) into `dist/`, one ES module per entry plus shared chunks. Every bare import stays an
 *   import — npm dependencies and the other workspaces alike — so each package's `dist/` holds its
 *   own code only, and `new URL('../migrations', import.meta.url)` means the same from `dist/` as
 *   from `src/`. The sources keep their extensionless relative imports: bundling resolves them.
 * - The console's browser bundle (Vite) into `packages/console/dist/`.
 * - Types (publishable packages): one `tsc` run emits declarations for the three packages, then
 *   relative specifiers get the `.js` / `/index.js` suffix that `moduleResolution: NodeNext`
 *   requires, and each package's tree lands in `dist/types/`.
 *
 * Development never needs this: the `openagents-source` export condition (tsconfig
 * `customConditions`, vitest, .npmrc's NODE_OPTIONS) resolves the workspaces to `src/`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Format, type Platform } from 'esbuild';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface Workspace {
  /** Folder relative to the repository root. */
  dir: string;
  /** Entry files relative to `src/`. */
  entries: string[];
  platform: Platform;
  /** Output folder relative to `dir`. */
  outDir: string;
  /** Emits `.d.ts` into `<outDir>/types` and is published to npm. */
  publish: boolean;
}

export const WORKSPACES: Workspace[] = [
  { dir: 'packages/protocol', entries: ['index.ts'], platform: 'neutral', outDir: 'dist', publish: true },
  { dir: 'packages/client', entries: ['index.ts'], platform: 'neutral', outDir: 'dist', publish: true },
  { dir: 'packages/react', entries: ['index.ts'], platform: 'neutral', outDir: 'dist', publish: true },
  {
    dir: 'packages/server-kit',
    entries: ['index.ts', 'migrate-cli.ts', 'token-cli.ts'],
    platform: 'node',
    outDir: 'dist',
    publish: false,
  },
  // The console's dist/ is its Vite browser build; its Node side (build check, static assets) goes
  // beside it, one level below the package like src/, so CONSOLE_ROOT resolves the same.
  { dir: 'packages/console', entries: ['index.ts'], platform: 'node', outDir: 'dist-node', publish: false },
  ...['api', 'delta', 'gateway', 'standalone'].map(
    (name): Workspace => ({
      dir: `services/${name}`,
      entries: ['index.ts', 'main.ts'],
      platform: 'node',
      outDir: 'dist',
      publish: false,
    }),
  ),
];

const FORMAT: Format = 'esm';

/**
 * Bundles one workspace's entries into `<dir>/<outDir>`; returns the bare static imports left in
 * the output (packages and `node:` builtins), which production must install. Dynamic `import()`s
 * are left out: they load optional packages (the console's Vite) behind a fallback.
 */
export async function buildJs(ws: Workspace, options: { write?: boolean } = {}): Promise<string[]> {
  const outdir = join(ROOT, ws.dir, ws.outDir);
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ws.entries.map((entry) => join(ROOT, ws.dir, 'src', entry)),
    outdir,
    outbase: join(ROOT, ws.dir, 'src'),
    bundle: true,
    splitting: ws.entries.length > 1,
    packages: 'external',
    format: FORMAT,
    platform: ws.platform,
    target: ws.platform === 'node' ? 'node20' : 'es2022',
    jsx: 'automatic',
    // The repo's tsconfig maps nothing, but pin it: the build must not depend on dev-only settings.
    tsconfig: join(ROOT, 'tsconfig.base.json'),
    sourcemap: 'linked',
    sourcesContent: true,
    legalComments: 'inline',
    logLevel: 'warning',
    write: options.write ?? true,
    metafile: true,
  });
  const imports = Object.values(result.metafile.outputs).flatMap((out) =>
    out.imports.filter((i) => i.external && i.kind !== 'dynamic-import').map((i) => i.path),
  );
  return [...new Set(imports)].sort();
}

const RELATIVE_SPECIFIER = /(\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]*)\2/g;

/**
 * Gives every relative specifier of a declaration file the explicit file that NodeNext resolution
 * wants: `./x` → `./x.js` (for `x.d.ts`), `./dir` → `./dir/index.js`.
 */
export function rewriteDeclaration(text: string, file: string): string {
  return text.replace(RELATIVE_SPECIFIER, (whole, lead: string, quote: string, spec: string) => {
    if (/\.(js|mjs|cjs|json)$/.test(spec)) return whole;
    const base = resolve(dirname(file), spec);
    let target: string;
    if (existsSync(`${base}.d.ts`)) target = `${spec}.js`;
    else if (existsSync(join(base, 'index.d.ts'))) target = `${spec.replace(/\/$/, '')}/index.js`;
    else throw new Error(`${relative(ROOT, file)}: cannot resolve declaration import '${spec}'`);
    return `${lead}${quote}${target}${quote}`;
  });
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

/** Emits the publishable packages' declarations into `<dir>/dist/types`. */
export function buildTypes(workspaces: Workspace[]): void {
  const scratch = join(ROOT, 'node_modules/.cache/openagents-dts');
  rmSync(scratch, { recursive: true, force: true });
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', scratch], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  for (const ws of workspaces) {
    // tsc's rootDir is packages/, so package X's declarations are under <scratch>/X/src.
    const from = join(scratch, ws.dir.replace(/^packages\//, ''), 'src');
    const to = join(ROOT, ws.dir, ws.outDir, 'types');
    for (const file of walk(from)) {
      if (!file.endsWith('.d.ts')) continue;
      const text = rewriteDeclaration(readFileSync(file, 'utf8'), file);
      if (/\/src\/|\.\.\/\.\.\/(protocol|client|react)\//.test(text)) {
        throw new Error(`${relative(scratch, file)} reaches into another package's sources: export the type`);
      }
      const out = join(to, relative(from, file));
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, text);
    }
  }
  rmSync(scratch, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const started = performance.now();
  for (const ws of WORKSPACES) rmSync(join(ROOT, ws.dir, ws.outDir), { recursive: true, force: true });
  await Promise.all(WORKSPACES.map((ws) => buildJs(ws)));
  buildTypes(WORKSPACES.filter((ws) => ws.publish));
  // The console's browser bundle (Vite), which the standalone server serves.
  const { buildConsole } = await import('../packages/console/src/build-console');
  await buildConsole();
  console.log(
    `built ${WORKSPACES.length} workspaces (${WORKSPACES.filter((w) => w.publish).length} with types) and the console in ${Math.round(performance.now() - started)} ms`,
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
