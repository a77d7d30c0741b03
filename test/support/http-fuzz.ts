/**
 * Generators and checks for fuzzing an HTTP app through `app.request(...)`: arbitrary methods,
 * paths, query strings, headers (huge, duplicated, non-UTF-8 bytes) and bodies (deep nesting,
 * huge strings, wrong types, binary). Shared by the api and delta fuzz tests.
 */
import { ErrorBody } from '@openagents/sync-protocol';
import fc from 'fast-check';
import { expect } from 'vitest';

/** Statuses the contract allows (section 4/6), success and error. */
export const CONTRACT_STATUSES = new Set([200, 201, 400, 401, 403, 404, 409, 410, 413, 415, 429, 503]);

export interface FuzzRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body: string | Uint8Array | undefined;
}

const deep = (open: string, close: string, n: number) => `${open.repeat(n)}${close.repeat(n)}`;

/** Raw JSON text: nesting far beyond what JSON.stringify survives is built as text. */
export const jsonText = (maxStringBytes: number): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 6000 }).map((n) => deep('[', ']', n)) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 1, max: 3000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
    },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: maxStringBytes - 100, max: maxStringBytes + 100 })
        .map((n) => JSON.stringify('x'.repeat(n))),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '1e308',
        '-0',
        '9007199254740993',
        '1e999',
        '-1',
        '1.5',
        '"NaN"',
        'null',
        'true',
      ),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom('{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}'),
    },
  );

/** A body object with known field names bound to arbitrary values, as raw JSON text. */
export const objectText = (fields: readonly string[], maxStringBytes: number): fc.Arbitrary<string> =>
  fc
    .array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...fields, '__proto__', 'constructor'), fc.string({ maxLength: 10 })),
        jsonText(maxStringBytes),
      ),
      {
        maxLength: 5,
      },
    )
    .map((members) => `{${members.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`);

const latin1 = fc.string({
  unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c === 0x7f ? 0x41 : c)),
  maxLength: 40,
});

/**
 * Header name/value pairs: usually a valid bearer token and a JSON content type (so cases reach
 * past the front door), plus auth variants, content types, huge, duplicated, non-UTF-8 bytes.
 */
export const headers = (validToken: string): fc.Arbitrary<[string, string][]> =>
  fc
    .tuple(
      fc.option(fc.constant<[string, string]>(['authorization', `Bearer ${validToken}`]), { freq: 5 }),
      fc.option(fc.constant<[string, string]>(['content-type', 'application/json']), { freq: 5 }),
      otherHeaders(validToken),
    )
    .map(([auth, type, rest]) => [...(auth ? [auth] : []), ...(type ? [type] : []), ...rest]);

const otherHeaders = (validToken: string): fc.Arbitrary<[string, string][]> =>
  fc.array(
    fc.oneof(
      fc.constantFrom<[string, string]>(
        ['authorization', `Bearer ${validToken}`],
        ['authorization', `Bearer ${validToken}`],
        ['authorization', 'Bearer garbage'],
        ['authorization', `Basic ${validToken}`],
        ['authorization', `Bearer ${'a'.repeat(20_000)}`],
        ['content-type', 'application/json'],
        ['content-type', 'application/json'],
        ['content-type', 'text/plain'],
        ['content-type', 'application/json; charset=latin1'],
        ['content-type', 'multipart/form-data; boundary=x'],
        ['cache-control', 'max-age=999999999999'],
        ['cache-control', 'max-age=-1'],
        ['content-length', '5'],
        ['x-forwarded-for', '1.2.3.4, 5.6.7.8'],
      ),
      fc.tuple(
        fc.constantFrom('idempotency-key', 'x-request-id', 'cache-control', 'if-none-match', 'x-fuzz'),
        latin1,
      ),
      fc.integer({ min: 1000, max: 16_000 }).map((n): [string, string] => ['x-huge', 'h'.repeat(n)]),
      fc.tuple(fc.constantFrom('idempotency-key', 'authorization', 'content-type'), latin1),
    ),
    { maxLength: 3 },
  );

const segment = fc.oneof(
  fc.constantFrom('..', '.', '%00', '%ZZ', '%2e%2e', '%2F', 'x'.repeat(3000), '', '__proto__', 'constructor'),
  fc.uuid(),
  fc.uuid().map((u) => u.toUpperCase()),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
);

const queryValue = fc.oneof(
  fc.constantFrom('1e308', '-1', '0', '9007199254740993', 'NaN', '', '1.5', 'x'.repeat(5000), '%ZZ', '*'),
  fc.uuid().map((u) => `org:${u}`),
  fc.uuid().map((u) => `agent:${u.toUpperCase()}`),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
);

/** A query string: known keys (duplicated at times) and others, arbitrary values. */
export const query = (keys: readonly string[]): fc.Arbitrary<string> =>
  fc
    .array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 8 }).map(encodeURIComponent)),
        queryValue,
      ),
      {
        maxLength: 6,
      },
    )
    .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`));

/** A path: one of the known routes with arbitrary segments appended or substituted. */
export const path = (known: readonly string[]): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...known) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...known), fc.array(segment, { maxLength: 3 }))
        .map(([p, s]) => [p, ...s].join('/')),
    },
    { weight: 1, arbitrary: fc.array(segment, { maxLength: 4 }).map((s) => `/${s.join('/')}`) },
  );

export const method = fc.constantFrom(
  'GET',
  'GET',
  'POST',
  'POST',
  'PATCH',
  'DELETE',
  'PUT',
  'HEAD',
  'OPTIONS',
  'FUZZ',
);

export const body = (
  fields: readonly string[],
  maxBytes: number,
): fc.Arbitrary<string | Uint8Array | undefined> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: objectText(fields, Math.min(maxBytes, 64 * 1024)) },
    { weight: 2, arbitrary: jsonText(maxBytes) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: maxBytes - 10, max: maxBytes + 10 }).map((n) => 'b'.repeat(n)),
    },
  );

/**
 * A valid body with some of its fields replaced by hostile values and some keys added, as raw
 * JSON text: close enough to valid that validation, not just parsing, is exercised.
 */
export const nearValid = (template: Record<string, unknown>, maxStringBytes: number): fc.Arbitrary<string> =>
  fc
    .record({
      replace: fc.subarray(Object.keys(template), { maxLength: Math.min(2, Object.keys(template).length) }),
      values: fc.array(jsonText(maxStringBytes), { minLength: 2, maxLength: 2 }),
      extra: fc.array(fc.tuple(fc.constantFrom('__proto__', 'constructor', 'id', 'x'), jsonText(1024)), {
        maxLength: 1,
      }),
      untouched: fc.boolean(),
    })
    .map(({ replace, values, extra, untouched }) => {
      if (untouched) return JSON.stringify(template);
      const members = Object.entries(template).map(([k, v]) => {
        const i = replace.indexOf(k);
        return `${JSON.stringify(k)}:${i >= 0 ? values[i] : JSON.stringify(v)}`;
      });
      for (const [k, v] of extra) members.push(`${JSON.stringify(k)}:${v}`);
      return `{${members.join(',')}}`;
    });

/** Builds the fetch Request of a fuzz case. */
export function toRequest(base: string, r: FuzzRequest): Request {
  const h = new Headers();
  for (const [k, v] of r.headers) h.append(k, v);
  const hasBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD';
  return new Request(base + r.path, {
    method: r.method,
    headers: h,
    ...(hasBody ? { body: r.body as BodyInit } : {}),
  });
}

/**
 * The contract's answer: a status it allows; an error is JSON `{ error: { code, message } }`
 * without a stack trace (HEAD answers carry no body).
 */
export async function expectContractAnswer(res: Response, r: FuzzRequest): Promise<void> {
  const text = await res.text();
  const where = `${r.method} ${r.path.slice(0, 200)} → ${res.status} ${text.slice(0, 300)}`;
  expect(CONTRACT_STATUSES.has(res.status), where).toBe(true);
  expect(text, where).not.toMatch(/\n\s+at |at .*\.(ts|js):\d+|node_modules/);
  if (res.status < 400 || r.method === 'HEAD') return;
  expect(res.headers.get('content-type') ?? '', where).toMatch(/application\/json/);
  expect(ErrorBody.safeParse(JSON.parse(text)).success, where).toBe(true);
}
