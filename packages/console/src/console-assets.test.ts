import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsoleAssets, injectConfig } from './console-assets';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln';
let dist: string;

beforeAll(() => {
  dist = mkdtempSync(join(tmpdir(), 'console-dist-'));
  mkdirSync(join(dist, 'assets'));
  writeFileSync(join(dist, 'index.html'), '<html><head><title>t</title></head><body></body></html>');
  writeFileSync(join(dist, 'assets', 'index-abc.js'), 'console.log(1)');
  writeFileSync(join(dist, 'assets', 'data.bin'), 'x');
  writeFileSync(join(dist, '..', 'secret.txt'), 'outside');
});

afterAll(() => {
  rmSync(dist, { recursive: true, force: true });
  rmSync(join(dist, '..', 'secret.txt'), { force: true });
});

const decode = (body: Uint8Array) => new TextDecoder().decode(body);

describe('createConsoleAssets', () => {
  it('serves the page with the config injected and never cached', async () => {
    const assets = createConsoleAssets({
      distDir: dist,
      config: { url: 'http://127.0.0.1:8787', token: JWT },
    });
    const page = (await assets.lookup('GET', '/'))!;
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.headers['cache-control']).toBe('no-store');
    const html = decode(page.body);
    expect(html).toContain(`window.__SYNC_CONFIG__ = {"url":"http://127.0.0.1:8787","token":"${JWT}"};`);
    expect(html.indexOf('__SYNC_CONFIG__')).toBeLessThan(html.indexOf('</head>'));
    // The CSP allows exactly the injected script.
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
  });

  it('answers client-side routes with the page, and hashed assets with a long cache', async () => {
    const assets = createConsoleAssets({ distDir: dist, config: () => ({ token: JWT }) });
    expect(decode((await assets.lookup('GET', '/org/abc'))!.body)).toContain('__SYNC_CONFIG__');
    const js = (await assets.lookup('GET', '/assets/index-abc.js'))!;
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toContain('javascript');
    expect(js.headers['cache-control']).toContain('immutable');
  });

  it('leaves the sync services’ paths alone', async () => {
    const assets = createConsoleAssets({ distDir: dist });
    for (const path of ['/api/agents', '/api', '/sync', '/sync/delta', '/healthz', '/readyz', '/metrics']) {
      expect(await assets.lookup('GET', path)).toBeUndefined();
    }
    expect(await assets.handle(new Request('http://x/api/agents', { method: 'POST' }))).toBeUndefined();
  });

  it('refuses traversal, malformed and unknown paths without reading outside dist', async () => {
    const assets = createConsoleAssets({ distDir: dist });
    for (const path of [
      '/../secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/..%2fsecret.txt',
    ]) {
      const answer = (await assets.lookup('GET', path))!;
      expect(answer.status).toBe(404);
      expect(decode(answer.body)).not.toContain('outside');
    }
    expect((await assets.lookup('GET', '/%E0%A4%A'))!.status).toBe(400);
    expect((await assets.lookup('GET', '/a%00.js'))!.status).toBe(400);
    expect((await assets.lookup('GET', '/assets/missing.js'))!.status).toBe(404);
    expect((await assets.lookup('GET', '/assets/data.bin'))!.status).toBe(404);
    expect((await assets.lookup('GET', `/${'a'.repeat(5000)}.js`))!.status).toBe(404);
  });

  it('answers 405 to writes and HEAD without a body', async () => {
    const assets = createConsoleAssets({ distDir: dist });
    const post = (await assets.handle(new Request('http://x/', { method: 'POST', body: 'x' })))!;
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = (await assets.handle(new Request('http://x/', { method: 'HEAD' })))!;
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('says so when the console is not built', async () => {
    const assets = createConsoleAssets({ distDir: join(dist, 'nope') });
    const page = (await assets.lookup('GET', '/'))!;
    expect(page.status).toBe(503);
    expect(decode(page.body)).toContain('build.ts');
  });
});

describe('injectConfig', () => {
  it('escapes values so they cannot close the script tag', () => {
    const { html } = injectConfig('<head></head>', {
      url: 'http://x/</script><script>alert(1)</script>',
      token: '\u2028&<!--',
    });
    expect(html).not.toContain('</script><script>alert');
    expect(html).not.toContain('<!--');
    expect(html.match(/<script>/g)).toHaveLength(1);
    // The page would still read the exact values back.
    const json = html.slice(html.indexOf('= ') + 2, html.indexOf(';</script>'));
    expect(JSON.parse(json)).toEqual({
      url: 'http://x/</script><script>alert(1)</script>',
      token: '\u2028&<!--',
    });
  });

  it('leaves the page unchanged without a config', () => {
    expect(injectConfig('<head></head>', undefined)).toEqual({ html: '<head></head>', scriptHash: null });
  });
});
