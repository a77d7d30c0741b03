// Token verification throughput: raw-bytes jose (how auth.ts verified before keys were imported
// once) against createAuth with one secret, three secrets (rotation) and a kid map. Run:
//   node --import tsx packages/server-kit/bench/verify.bench.ts
import { jwtVerify } from 'jose';
import { createAuth } from '../src/auth';

const s = (c: string) => c.repeat(40);
const single = createAuth({ secret: s('a') });
const rotated = createAuth({ secret: s('a'), previousSecrets: [s('b'), s('c')] });
const keyed = createAuth({ secret: s('a'), keys: { k1: s('b'), k2: s('c') } });
const tCurrent = await single.sign({ sub: 'u', scopes: ['org:1'] });
const tOldest = await createAuth({ secret: s('c') }).sign({ sub: 'u', scopes: ['org:1'] });
const tKid = await createAuth({ secret: s('c'), kid: 'k2' }).sign({ sub: 'u', scopes: ['org:1'] });
const raw = new TextEncoder().encode(s('a'));
const cases: [string, () => Promise<unknown>][] = [
  ['baseline: jose with raw key bytes (before)', () => jwtVerify(tCurrent, raw, { algorithms: ['HS256'] })],
  ['one secret, current token', () => single.verify(tCurrent)],
  ['3 secrets, current token', () => rotated.verify(tCurrent)],
  ['3 secrets, token of the oldest (3 HMACs)', () => rotated.verify(tOldest)],
  ['kid map, token naming k2 (1 HMAC)', () => keyed.verify(tKid)],
];
const best = new Map<string, number>();
for (let round = 0; round < 7; round++) {
  for (const [label, f] of cases) {
    for (let i = 0; i < 500; i++) await f();
    const n = 5000;
    const t = performance.now();
    for (let i = 0; i < n; i++) await f();
    const perSec = Math.round(n / ((performance.now() - t) / 1000));
    best.set(label, Math.max(best.get(label) ?? 0, perSec));
  }
}
const base = best.get(cases[0]![0])!;
for (const [label, v] of best)
  console.log(`${label.padEnd(46)} ${String(v).padStart(6)} verifies/s  ${(v / base).toFixed(2)}x`);
