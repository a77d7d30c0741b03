import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createAuth } from '@openagents/sync-server-kit';
import { build, type Plugin } from 'esbuild';
import { describe, expect, it } from 'vitest';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPTS = {
  'fanout.ts': ['options', 'setup', 'subscriber', 'publisher'],
  'mutations.ts': ['options', 'setup', 'default', 'teardown'],
  'reconnect-storm.ts': ['options', 'setup', 'client', 'writer'],
  'bootstrap.ts': ['options', 'setup', 'httpBootstrap', 'wsBootstrap'],
  'soak.ts': ['options', 'setup', 'subscriber', 'writer'],
} as const;

/** Bundles a script as k6 would run it: ESM, k6 modules left as imports, nothing from Node. */
async function bundle(entry: string) {
  return build({
    entryPoints: [join(HERE, entry)],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2020',
    external: ['k6', 'k6/*'],
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
}

describe('k6 scripts', () => {
  it('type-check against @types/k6', async () => {
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const run = promisify(execFile)(process.execPath, [tsc, '-p', join(HERE, 'tsconfig.json')], {
      cwd: ROOT,
    });
    await expect(run).resolves.toMatchObject({ stdout: '' });
  }, 60_000);

  it.each(Object.entries(SCRIPTS))(
    '%s bundles with k6 modules external and exports its entry points',
    async (file, names) => {
      const result = await bundle(file);
      expect(result.errors).toEqual([]);
      const code = result.outputFiles[0]!.text;
      const imports = Object.values(result.metafile.outputs)[0]!.imports.map((i) => i.path);
      expect(imports.length).toBeGreaterThan(0);
      for (const path of imports) expect(path).toMatch(/^k6(\/|$)/);
      const exported = /export\s*\{([^}]*)\}/.exec(code)?.[1] ?? '';
      for (const name of names) {
        expect(exported).toMatch(name === 'default' ? /as default/ : new RegExp(`\\b${name}\\b`));
      }
    },
    30_000,
  );

  it('sign tokens in k6 that the services accept', async () => {
    // The k6 modules the signer uses, shimmed over Node so the real script code runs here.
    const shims: Plugin = {
      name: 'k6-shims',
      setup(b) {
        b.onResolve({ filter: /^k6\/(crypto|encoding)$/ }, (args) => ({ path: args.path, namespace: 'k6' }));
        b.onLoad({ filter: /.*/, namespace: 'k6' }, (args) => ({
          loader: 'js',
          contents:
            args.path === 'k6/crypto'
              ? `export default { hmac: (alg, secret, input) => globalThis.__hmac(alg, secret, input) };`
              : `export default { b64encode: (s) => globalThis.__b64(s) };`,
        }));
      },
    };
    const result = await build({
      entryPoints: [join(HERE, 'lib/jwt.ts')],
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      write: false,
      plugins: [shims],
      logLevel: 'silent',
    });
    const dir = mkdtempSync(join(tmpdir(), 'k6-jwt-'));
    try {
      const file = join(dir, 'jwt.mjs');
      writeFileSync(file, result.outputFiles[0]!.text);
      const g = globalThis as Record<string, unknown>;
      g.__hmac = (_alg: string, secret: string, input: string) =>
        createHmac('sha256', secret).update(input).digest('base64url');
      g.__b64 = (s: string) => Buffer.from(s).toString('base64url');
      const secret = 'k6-secret-k6-secret-k6-secret-0123456789';
      g.__ENV = { SYNC_JWT_SECRET: secret };
      const jwt = (await import(pathToFileURL(file).href)) as {
        tokenFor(sub: string, scopes?: string[], ttl?: number): string;
      };
      const auth = createAuth({ secret });
      await expect(auth.verify(jwt.tokenFor('k6-user', ['agent:*']))).resolves.toMatchObject({
        sub: 'k6-user',
        scopes: ['agent:*'],
      });
      await expect(createAuth({ secret: `${secret}x` }).verify(jwt.tokenFor('k6-user'))).rejects.toThrow(
        /Invalid token/,
      );
      await expect(auth.verify(jwt.tokenFor('k6-user', ['*'], -60))).rejects.toThrow(/expired/i);
      g.__ENV = { TOKEN: 'ready-made' };
      expect(jwt.tokenFor('anyone')).toBe('ready-made');
      g.__ENV = {};
      expect(() => jwt.tokenFor('anyone')).toThrow(/SYNC_JWT_SECRET/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
