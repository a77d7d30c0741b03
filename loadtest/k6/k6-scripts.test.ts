import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  'fanout.ts': ['options', 'setup', 'subscriber', 'publisher', 'handleSummary'],
  'mutations.ts': ['options', 'setup', 'default', 'teardown', 'handleSummary'],
  'reconnect-storm.ts': ['options', 'setup', 'client', 'writer', 'handleSummary'],
  'bootstrap.ts': ['options', 'setup', 'httpBootstrap', 'wsBootstrap', 'handleSummary'],
  'soak.ts': ['options', 'setup', 'subscriber', 'writer', 'handleSummary'],
  'stream.ts': ['options', 'setup', 'writer', 'viewer', 'handleSummary'],
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

  it.each(Object.keys(SCRIPTS))(
    '%s keeps tokens out of URLs, uses k6/websockets and fails on dropped iterations',
    async (file) => {
      const result = await bundle(file);
      const code = result.outputFiles[0]!.text;
      const imports = Object.values(result.metafile.outputs)[0]!.imports.map((i) => i.path);
      // k6 tags every sample with its url: a token there lands in every output, one series per VU.
      expect(code).not.toMatch(/[?&]token=/);
      expect(imports).not.toContain('k6/ws');
      if (/WebSocket|subscribe\(/.test(code)) {
        expect(imports).toContain('k6/websockets');
        expect(code).toMatch(/Authorization: `Bearer \$\{token\}`/);
      }
      const source = readFileSync(join(HERE, file), 'utf8');
      if (source.includes("'constant-arrival-rate'")) {
        expect(source, 'an arrival-rate run that drops iterations did less than it claims').toMatch(
          /dropped_iterations: \['count==0'\]/,
        );
      }
    },
    30_000,
  );

  it('summarise as text with failed thresholds marked and as JSON in SUMMARY_DIR', async () => {
    const result = await build({
      entryPoints: [join(HERE, 'lib/summary.ts')],
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      write: false,
      logLevel: 'silent',
    });
    const dir = mkdtempSync(join(tmpdir(), 'k6-summary-'));
    try {
      const file = join(dir, 'summary.mjs');
      writeFileSync(file, result.outputFiles[0]!.text);
      (globalThis as Record<string, unknown>).__ENV = { SUMMARY_DIR: '/tmp/out/' };
      const lib = (await import(pathToFileURL(file).href)) as {
        summaryOutputs(script: string, data: unknown): Record<string, string>;
      };
      const data = {
        state: { testRunDurationMs: 12_500 },
        metrics: {
          dropped_iterations: {
            type: 'counter',
            values: { count: 207, rate: 3.4 },
            thresholds: { 'count==0': { ok: false } },
          },
          sync_delivery_ms: {
            type: 'trend',
            values: { 'p(99)': 42.5, avg: 3.25 },
            thresholds: { 'p(99)<100': { ok: true } },
          },
        },
      };
      const out = lib.summaryOutputs('fanout', data);
      expect(Object.keys(out).sort()).toEqual(['/tmp/out/fanout-summary.json', 'stdout']);
      expect(JSON.parse(out['/tmp/out/fanout-summary.json']!)).toEqual(data);
      const text = out.stdout!;
      expect(text).toContain('fanout: 12.5 s');
      expect(text).toMatch(/dropped_iterations \(counter\) count=207/);
      expect(text).toContain('✗ count==0');
      expect(text).toContain('✓ p(99)<100');
      expect(text).toMatch(/p\(99\)=42\.50ms/);
      expect(text).toContain('1 threshold(s) FAILED');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

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
