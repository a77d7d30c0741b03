import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerFrame } from '@openagents/sync-protocol';
import { createLogger } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { freePort } from '../../../test/support/ports';
import { loadStandaloneConfig } from './config';
import { loadOrCreateDevSecret } from './dev-secret';
import { createStandalone } from './standalone';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

describe('standalone server (embedded Postgres, in-process bus)', () => {
  let dataDir: string;
  let server: ReturnType<typeof createStandalone>;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'oas-standalone-'));
    // The embedded Postgres runs as the postgres user, who must be able to enter the folder.
    chmodSync(dataDir, 0o755);
    const config = loadStandaloneConfig({
      PORT: String(await freePort()),
      EMBEDDED_PG_PORT: String(await freePort()),
      DATA_DIR: dataDir,
      SERVE_CONSOLE: 'false',
      LOG_LEVEL: 'silent',
    });
    server = createStandalone({ config, log: createLogger({ name: 'standalone-test', level: 'silent' }) });
    await server.start();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps the cluster and the dev secret under the data folder', () => {
    expect(existsSync(join(dataDir, 'pg', 'PG_VERSION'))).toBe(true);
    expect(loadOrCreateDevSecret(dataDir)).toHaveLength(43);
  });

  it('is ready and serves metrics on the one port', async () => {
    const { url } = server.info();
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { database: true } });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('sync_gateway_connections');
    expect(metrics).toContain('sync_mutations_total');
  });

  it('serves writes, reads and the live stream with the printed dev token', async () => {
    const { url, wsUrl, devToken } = server.info();
    const org = crypto.randomUUID();
    const scope = `org:${org}`;
    const frames: ServerFrame[] = [];
    const ws = new WebSocket(`${wsUrl}?token=${devToken}`);
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ type: 'subscribe', scope }));
    await expect.poll(() => frames.some((f) => f.type === 'subscribed')).toBe(true);

    const res = await fetch(`${url}/api/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${devToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ org_id: org, name: 'Scout' }),
    });
    expect(res.status).toBe(201);
    const created = await res.json();
    expect(created).toMatchObject({ scope, syncId: 1 });

    await expect
      .poll(() => frames.filter((f) => f.type === 'sync').flatMap((f) => f.events.map((e) => e.id)))
      .toEqual([1]);
    ws.close();

    const boot = await fetch(`${url}/sync/bootstrap?scope=${scope}`, {
      headers: { authorization: `Bearer ${devToken}` },
    });
    expect(await boot.json()).toMatchObject({ lastSyncId: 1, models: { Agent: [created.data] } });
  });

  it('answers unknown paths with a JSON 404', async () => {
    const res = await fetch(`${server.info().url}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'not_found' } });
  });
});

describe('standalone configuration', () => {
  it('stops with a message naming the bad variable', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/standalone/src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, PORT: 'eighty', DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d.toString();
    });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/PORT: .*"eighty"/);
  });

  it('rejects a short SYNC_JWT_SECRET and a non-postgres DATABASE_URL', () => {
    expect(() => loadStandaloneConfig({ SYNC_JWT_SECRET: 'short' })).toThrow(/SYNC_JWT_SECRET/);
    expect(() => loadStandaloneConfig({ DATABASE_URL: 'mysql://x/y' })).toThrow(/DATABASE_URL/);
  });
});
