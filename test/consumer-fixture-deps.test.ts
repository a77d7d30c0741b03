/**
 * The build keeps every bare import external (scripts/build.ts), so what a workspace's dist/
 * imports at run time must be installed by production's `npm ci --omit=dev` — and, for the
 * published packages, by a consumer's `npm install`. A package that is only a root dev dependency
 * works under tsx and vitest and fails in the image; this test catches that at `npm test`.
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { buildJs, ROOT, WORKSPACES } from '../scripts/build';

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
const packageOf = (specifier: string) =>
  specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;

describe('dist imports', () => {
  it.each(WORKSPACES.map((ws) => ws.dir))(
    '%s imports only its declared dependencies',
    async (dir) => {
      const ws = WORKSPACES.find((w) => w.dir === dir)!;
      const manifest = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as {
        dependencies?: Record<string, string>;
        peerDependencies?: Record<string, string>;
      };
      const declared = new Set([
        ...Object.keys(manifest.dependencies ?? {}),
        ...Object.keys(manifest.peerDependencies ?? {}),
      ]);
      const imports = await buildJs(ws, { write: false });
      expect(imports.length).toBeGreaterThan(0);
      const undeclared = imports
        .filter((i) => !i.startsWith('node:') && !builtinModules.includes(i))
        .map(packageOf)
        .filter((name) => !declared.has(name));
      expect(undeclared).toEqual([]);
      if (ws.platform === 'neutral') {
        // Browser packages: no Node builtins at all.
        expect(imports.filter((i) => i.startsWith('node:') || builtinModules.includes(i))).toEqual([]);
      }
    },
    60_000,
  );
});

describe('development resolution', () => {
  it('builds every workspace under packages/ and services/', () => {
    const dirs = ['packages', 'services'].flatMap((parent) =>
      readdirSync(join(ROOT, parent))
        .filter((name) => existsSync(join(ROOT, parent, name, 'package.json')))
        .map((name) => `${parent}/${name}`),
    );
    expect(WORKSPACES.map((ws) => ws.dir).sort()).toEqual(dirs.sort());
  });

  it('maps every workspace to its sources in tsconfig.json paths (for tsx) and its exports (for the rest)', () => {
    const { config } = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile) as {
      config: { compilerOptions: { paths: Record<string, string[]> } };
    };
    const expected: Record<string, string[]> = {};
    for (const ws of WORKSPACES) {
      const manifest = JSON.parse(readFileSync(join(ROOT, ws.dir, 'package.json'), 'utf8')) as {
        name: string;
        exports: Record<string, Record<string, string>>;
      };
      expected[manifest.name] = [`./${ws.dir}/src/index.ts`];
      expect(manifest.exports['.']?.['openagents-source'], ws.dir).toBe('./src/index.ts');
      expect(manifest.exports['.']?.default, ws.dir).toBe(`./${ws.outDir}/index.js`);
    }
    expect(config.compilerOptions.paths).toEqual(expected);
  });
});
