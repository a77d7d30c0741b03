import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findPostgresUser, firstFolderPostgresCannotEnter } from './postgres-access';

describe('firstFolderPostgresCannotEnter', () => {
  const root = mkdtempSync(join(tmpdir(), 'oas-access-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('names the outermost folder without the execute bit for others when the user does not exist yet', () => {
    const inner = join(root, 'a', 'b');
    mkdirSync(inner, { recursive: true });
    chmodSync(root, 0o755);
    chmodSync(join(root, 'a'), 0o700);
    expect(firstFolderPostgresCannotEnter([join(inner, 'pg')], undefined)).toBe(join(root, 'a'));
    chmodSync(join(root, 'a'), 0o711);
    expect(firstFolderPostgresCannotEnter([join(inner, 'pg')], undefined)).toBeUndefined();
  });

  it.skipIf(process.getuid?.() !== 0 || !findPostgresUser())(
    'asks the system as the postgres user when it exists',
    () => {
      const locked = join(root, 'locked');
      mkdirSync(locked);
      chmodSync(locked, 0o700);
      expect(firstFolderPostgresCannotEnter([join(locked, 'x')])).toBe(locked);
      chmodSync(locked, 0o701);
      expect(firstFolderPostgresCannotEnter([join(locked, 'x')])).toBeUndefined();
    },
  );
});
