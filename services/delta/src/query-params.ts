import {
  canonicalScope,
  DEFAULT_DELTA_LIMIT,
  MAX_DELTA_LIMIT,
  MAX_HEADS_SCOPES,
} from '@openagents/sync-protocol';
import { AppError } from '@openagents/sync-server-kit';
import { z } from 'zod';
import { MAX_CURSOR_LENGTH } from './bootstrap-cursor';

/** The most scopes one `GET /sync/heads` may ask about (shared with the gateway's heads client). */
export { MAX_HEADS_SCOPES };

// Integers arrive as decimal strings. Only plain digits: "1e3", "0x10", " 1", "+1" and "1.0" are
// not cursors. Sixteen digits bounds the value near 2^53, then the safe-integer check is exact.
const decimal = z
  .string()
  .max(16, 'must be at most 16 digits')
  .regex(/^\d+$/, 'must be a non-negative integer')
  .transform(Number)
  .refine(Number.isSafeInteger, 'must be a safe integer');

// A scope is read in its canonical form (lowercase uuid), the one the log is written under, so
// `org:5E79…` reads the same log the token check (which compares canonical forms) allowed.
const CanonicalScope = z.string().transform((s, ctx) => {
  const canonical = canonicalScope(s);
  if (canonical === undefined) {
    ctx.addIssue({ code: 'custom', message: 'scope must look like "org:<id>" or "agent:<id>"' });
    return z.NEVER;
  }
  return canonical;
});

// The cursor's content is checked by `decodeCursor` against the scope; here only its size.
const BootstrapQuery = z
  .object({ scope: CanonicalScope, cursor: z.string().min(1).max(MAX_CURSOR_LENGTH).optional() })
  .strict();
const DeltaQuery = z
  .object({
    scope: CanonicalScope,
    lastSyncId: decimal,
    limit: decimal
      .refine((n) => n >= 1 && n <= MAX_DELTA_LIMIT, `must be between 1 and ${MAX_DELTA_LIMIT}`)
      .default(DEFAULT_DELTA_LIMIT),
  })
  .strict();
const scopeList = z.array(CanonicalScope).min(1, 'at least one scope').max(MAX_HEADS_SCOPES);
const HeadsQuery = z.object({ scope: scopeList }).strict();
/** `POST /sync/heads` body: for long lists that would not fit in a URL. */
const HeadsBody = z.object({ scopes: scopeList }).strict();

export type BootstrapQuery = z.infer<typeof BootstrapQuery>;
export type DeltaQuery = z.infer<typeof DeltaQuery>;
export type HeadsQuery = z.infer<typeof HeadsQuery>;

/** A query string as Hono gives it: every value of every parameter. */
type RawQuery = Record<string, string[]>;

/** `?scope=S[&cursor=C]` */
export function parseBootstrapQuery(raw: RawQuery): BootstrapQuery {
  return parse(BootstrapQuery, singleValues(raw));
}

/** `?scope=S&lastSyncId=N[&limit=L]` */
export function parseDeltaQuery(raw: RawQuery): DeltaQuery {
  return parse(DeltaQuery, singleValues(raw));
}

/** `?scope=a&scope=b…`: repeated on purpose, each value one scope. */
export function parseHeadsQuery(raw: RawQuery): HeadsQuery {
  const { scope, ...rest } = raw;
  const others = singleValues(rest);
  return parse(HeadsQuery, { ...others, ...(scope === undefined ? {} : { scope }) });
}

/** `POST /sync/heads` `{ "scopes": [...] }`, answered like the GET. */
export function parseHeadsBody(body: unknown): string[] {
  return parse(HeadsBody, body).scopes;
}

/**
 * One value per parameter. A repeated parameter is ambiguous (which cursor did the client mean?)
 * and a common smuggling trick between proxies that pick different ones, so it is refused.
 */
function singleValues(raw: RawQuery): Record<string, string> {
  const single: Record<string, string> = {};
  const repeated: string[] = [];
  for (const [name, values] of Object.entries(raw)) {
    if (values.length !== 1) repeated.push(name);
    else single[name] = values[0]!;
  }
  if (repeated.length > 0) {
    throw new AppError('bad_request', `Repeated query parameter: ${repeated.join(', ')}`, {
      details: repeated.map((name) => ({ path: name, message: 'must be given once' })),
    });
  }
  return single;
}

function parse<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => ({
    path: issue.path.length > 0 ? issue.path.join('.') : String((issue as { keys?: string[] }).keys ?? ''),
    message: issue.message,
  }));
  const names = [...new Set(details.map((d) => d.path.split('.')[0]))].join(', ');
  throw new AppError('bad_request', `Invalid query parameter: ${names}`, { details });
}
