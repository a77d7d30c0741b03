import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { createAuth } from './auth';
import { runTokenCommand } from './token-command';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const secret = 'c'.repeat(40);

describe('npm run token', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'oas-token-'));
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  it('mints a token with the given scopes, lifetime and subject from SYNC_JWT_SECRET', async () => {
    const result = await runTokenCommand(
      ['--scope', 'org:7f1c', '--scope', 'agent:*', '--ttl', '2h', '--sub', 'alice'],
      { SYNC_JWT_SECRET: secret, SYNC_JWT_ISSUER: 'https://app.example' },
      cwd,
    );
    expect(result.ok).toBe(true);
    const token = (result as { token: string }).token;
    const principal = await createAuth({ secret, issuer: 'https://app.example' }).verify(token);
    expect(principal).toMatchObject({ sub: 'alice', scopes: ['org:7f1c', 'agent:*'] });
    expect(decodeJwt(token).exp! - decodeJwt(token).iat!).toBe(7200);
  });

  it("falls back to the standalone server's dev secret under DATA_DIR", async () => {
    const dataDir = join(cwd, 'data');
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'dev-jwt-secret'), `${'d'.repeat(43)}\n`);
    const result = await runTokenCommand(['--scope', 'org:1'], { DATA_DIR: 'data' }, cwd);
    expect(result.ok).toBe(true);
    const principal = await createAuth({ secret: 'd'.repeat(43) }).verify(
      (result as { token: string }).token,
    );
    expect(principal).toMatchObject({ sub: 'dev', scopes: ['org:1'] });
  });

  it('says what is missing: a scope, a secret, a valid ttl, a known option', async () => {
    const env = { SYNC_JWT_SECRET: secret };
    expect(await runTokenCommand([], env, cwd)).toMatchObject({ ok: false, message: /at least one --scope/ });
    expect(await runTokenCommand(['--scope', 'org:1'], {}, cwd)).toMatchObject({
      ok: false,
      message: /No secret/,
    });
    expect(await runTokenCommand(['--scope', 'org:1', '--ttl', 'soon'], env, cwd)).toMatchObject({
      ok: false,
      message: /Invalid ttl/,
    });
    expect(await runTokenCommand(['--scop', 'org:1'], env, cwd)).toMatchObject({
      ok: false,
      message: /Unknown option/,
    });
  });

  it('is wired to npm run token, printing only the token', () => {
    const run = spawnSync('npm', ['run', '--silent', 'token', '--', '--scope', 'org:1', '--ttl', '5m'], {
      cwd: ROOT,
      env: { ...process.env, SYNC_JWT_SECRET: secret },
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(decodeJwt(run.stdout.trim()).scopes).toEqual(['org:1']);
  }, 30_000);
});
