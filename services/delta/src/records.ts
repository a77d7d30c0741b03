import type { Row } from './queries';

/**
 * A database row as the wire carries a record: timestamps become ISO-8601 strings in UTC with
 * millisecond precision (`Date#toISOString`, exactly what the write path puts in its responses and
 * events), everything else is already JSON (uuids and text are strings, bigints numbers).
 */
export function toRecord(row: Row): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    record[key] = value instanceof Date ? value.toISOString() : value;
  }
  return record;
}
