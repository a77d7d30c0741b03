import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONSOLE_ROOT, ensureConsoleBuilt, isConsoleBuildFresh, ViteUnavailableError } from './build-console';

const parent = mkdtempSync(join(tmpdir(), 'console-build-'));
const distDir = join(parent, 'dist');

afterAll(() => rmSync(parent, { recursive: true, force: true }));

describe('ensureConsoleBuilt', () => {
  it('builds once, then reuses the build until a source file changes', async () => {
    const first = await ensureConsoleBuilt({ distDir, logLevel: 'silent' });
    expect(first.built).toBe(true);
    const html = readFileSync(join(distDir, 'index.html'), 'utf8');
    expect(html).toMatch(/<script type="module" crossorigin src="\/assets\/index-[\w-]+\.js"><\/script>/);
    const assets = readdirSync(join(distDir, 'assets'));
    expect(assets.some((f) => f.endsWith('.css'))).toBe(true);
    // A production bundle even though vitest runs with NODE_ENV=test: no dev JSX runtime calls.
    const js = readFileSync(join(distDir, 'assets', assets.find((f) => f.endsWith('.js'))!), 'utf8');
    expect(process.env.NODE_ENV).toBe('test');
    expect(js).not.toContain('jsxDEV');
    // No scratch folder is left behind.
    expect(readdirSync(parent)).toEqual(['dist']);

    const second = await ensureConsoleBuilt({ distDir, logLevel: 'silent' });
    expect(second.built).toBe(false);

    // Touch a source file: the build is stale now.
    const source = join(CONSOLE_ROOT, 'index.html');
    const original = statSync(source);
    const future = new Date(Date.now() + 60_000);
    utimesSync(source, future, future);
    try {
      expect(isConsoleBuildFresh(distDir)).toBe(false);
    } finally {
      utimesSync(source, original.atime, original.mtime);
    }
  });

  it('serves an existing build as it is when Vite is not installed, and says so', async () => {
    const noVite = () => Promise.reject(new Error("Cannot find package 'vite'"));
    const source = join(CONSOLE_ROOT, 'index.html');
    const original = statSync(source);
    const future = new Date(Date.now() + 60_000);
    utimesSync(source, future, future);
    try {
      const result = await ensureConsoleBuilt({ distDir, loadVite: noVite });
      expect(result).toMatchObject({ distDir, built: false, stale: true });
    } finally {
      utimesSync(source, original.atime, original.mtime);
    }
    await expect(
      ensureConsoleBuilt({ distDir: join(parent, 'none'), loadVite: noVite }),
    ).rejects.toBeInstanceOf(ViteUnavailableError);
    expect(existsSync(join(parent, 'none'))).toBe(false);
  });

  it('reports a missing build as stale', () => {
    expect(isConsoleBuildFresh(join(parent, 'missing'))).toBe(false);
    expect(existsSync(join(parent, 'missing'))).toBe(false);
  });
});
