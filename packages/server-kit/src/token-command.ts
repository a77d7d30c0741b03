import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { mintToken } from './mint-token';

export const TOKEN_USAGE = `Usage: npm run token -- --scope <pattern> [--scope <pattern> …] [--ttl 1h] [--sub <user>]

Mints a client token signed with SYNC_JWT_SECRET, or else with the standalone server's dev
secret (DATA_DIR, default .data/standalone). Scope patterns: an exact scope (org:<uuid>),
a prefix ending in * (agent:*), or * alone for everything. SYNC_JWT_KID, SYNC_JWT_ISSUER and
SYNC_JWT_AUDIENCE are applied when set.

  --scope  a scope pattern the token may read and write (repeat for several; required)
  --ttl    lifetime: seconds or a number with s, m, h, d (default 1h)
  --sub    the user the token speaks for (default dev)`;

export type TokenCommandResult = { ok: true; token: string } | { ok: false; message: string };

/**
 * `npm run token`: parses the arguments, finds the secret and mints the token. Returns the token
 * or one line saying what is wrong; prints nothing itself.
 */
export async function runTokenCommand(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  cwd: string = process.cwd(),
): Promise<TokenCommandResult> {
  let values: { scope?: string[]; ttl?: string; sub?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        scope: { type: 'string', multiple: true },
        ttl: { type: 'string', default: '1h' },
        sub: { type: 'string', default: 'dev' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    return { ok: false, message: `${(err as Error).message}\n\n${TOKEN_USAGE}` };
  }
  if (values.help) return { ok: false, message: TOKEN_USAGE };
  if (!values.scope?.length) return { ok: false, message: `Give at least one --scope.\n\n${TOKEN_USAGE}` };

  const secret =
    env.SYNC_JWT_SECRET?.trim() ||
    readDevSecret(resolve(cwd, env.DATA_DIR?.trim() || join('.data', 'standalone')));
  if (!secret) {
    return {
      ok: false,
      message:
        'No secret: set SYNC_JWT_SECRET, or run `npm start` once so the standalone server creates its dev secret.',
    };
  }
  if (secret.length < 32) return { ok: false, message: 'SYNC_JWT_SECRET must be at least 32 characters.' };
  const optional = (name: string) => env[name]?.trim() || undefined;
  const kid = optional('SYNC_JWT_KID');
  const issuer = optional('SYNC_JWT_ISSUER');
  const audience = optional('SYNC_JWT_AUDIENCE');
  try {
    const token = await mintToken({
      secret,
      sub: values.sub ?? 'dev',
      scopes: values.scope,
      ttl: values.ttl ?? '1h',
      ...(kid ? { kid } : {}),
      ...(issuer ? { issuer } : {}),
      ...(audience ? { audience } : {}),
    });
    return { ok: true, token };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

function readDevSecret(dataDir: string): string | undefined {
  const file = join(dataDir, 'dev-jwt-secret');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}
