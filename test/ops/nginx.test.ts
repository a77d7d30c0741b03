import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { freePort } from '../support/ports';
import { startNginx } from './processes';
import { CI_INSTALL_HINT, localNginxConfig, readRepoFile, which } from './repo';

// deploy/nginx/nginx.conf through a real `nginx -t`. Upstream host names only resolve inside the
// compose network, so they are rewritten to 127.0.0.1 first (nothing else changes); the stack test
// then runs this same file as the load balancer in front of the real services.

describe('deploy/nginx/nginx.conf', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nginx-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('passes nginx -t', () => {
    const nginx = which('nginx') ?? (which('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined);
    expect(nginx, `nginx is not installed: ${CI_INSTALL_HINT}`).toBeDefined();
    const file = join(dir, 'nginx.conf');
    writeFileSync(
      file,
      localNginxConfig({ listen: 18080, upstreams: { api: [1, 2], delta: [3], gateway: [4, 5] }, dir }),
    );
    const out = execFileSync(nginx!, ['-t', '-c', file, '-p', dir], { encoding: 'utf8', stdio: 'pipe' });
    expect(out).toBe('');
  });

  it('answers its own refusals in the JSON error shape: unknown path, oversized body, no backend', async () => {
    const closed = await freePort(); // nothing listens there: every upstream is down
    const lb = await startNginx({ api: [closed], delta: [closed], gateway: [closed] });
    try {
      const expectJsonError = async (res: Response, status: number, code: string) => {
        expect(res.status).toBe(status);
        expect(res.headers.get('content-type')).toContain('application/json');
        expect(await res.json()).toMatchObject({ error: { code } });
      };
      await expectJsonError(await fetch(`${lb.url}/nowhere`), 404, 'not_found');
      const huge = 'x'.repeat(3 * 1024 * 1024);
      await expectJsonError(
        await fetch(`${lb.url}/api/messages`, {
          method: 'POST',
          body: huge,
          headers: { 'content-type': 'application/json' },
        }),
        413,
        'payload_too_large',
      );
      const down = await fetch(`${lb.url}/api/agents`, { method: 'POST', body: '{}' });
      expect(down.headers.get('retry-after')).toBe('1');
      await expectJsonError(down, 503, 'unavailable');
      await expectJsonError(await fetch(`${lb.url}/sync/delta?scope=org:x&lastSyncId=0`), 503, 'unavailable');
      const upgradeStatus = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`${lb.url.replace('http', 'ws')}/sync?token=x`);
        ws.once('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.once('open', () => reject(new Error('upgrade succeeded with no gateway')));
        ws.once('error', () => {});
      });
      expect(upgradeStatus).toBe(503);
      expect(await (await fetch(`${lb.url}/lb/healthz`)).json()).toEqual({ status: 'ok' });
    } finally {
      await lb.stop();
    }
  });

  it('routes the contract paths, upgrades /sync and keeps WebSockets open long enough', () => {
    const conf = readRepoFile('deploy/nginx/nginx.conf');
    const block = (location: string) => {
      const start = conf.indexOf(`location ${location} {`);
      expect(start, location).toBeGreaterThan(-1);
      return conf.slice(start, conf.indexOf('}', start));
    };
    expect(block('/api/')).toContain('proxy_pass http://api;');
    expect(block('= /sync/bootstrap')).toContain('proxy_pass http://delta;');
    expect(block('= /sync/delta')).toContain('proxy_pass http://delta;');
    const ws = block('= /sync');
    expect(ws).toContain('proxy_pass http://gateway;');
    expect(ws).toContain('proxy_set_header Upgrade $http_upgrade;');
    expect(ws).toContain('proxy_set_header Connection $connection_upgrade;');
    expect(ws).toMatch(/proxy_read_timeout 1h;/);
    const upstreams = readRepoFile('deploy/nginx/nginx.conf');
    expect(upstreams).toMatch(/upstream gateway \{[^}]*least_conn;/);
    // A shared zone per upstream: least_conn and max_fails state across all worker processes.
    for (const name of ['api', 'delta', 'gateway']) {
      expect(upstreams, name).toMatch(new RegExp(`upstream ${name} \\{\\s*zone ${name} \\d+k;`));
    }
    expect(upstreams).toMatch(/upstream api \{[^}]*keepalive \d+;/);
  });
});
