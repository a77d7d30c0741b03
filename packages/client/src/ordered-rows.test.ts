import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OrderedRows } from './ordered-rows';

type Row = { id: string; created_sync_id?: number; v: number };
type Op = { k: 'set'; id: number; sync: number | null; v: number } | { k: 'delete'; id: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant('set' as const),
      id: fc.integer({ min: 0, max: 30 }),
      // Few distinct ids in the log, so ties (broken by id) are common; null: not confirmed yet.
      sync: fc.option(fc.integer({ min: 1, max: 8 })),
      v: fc.nat(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('delete' as const), id: fc.integer({ min: 0, max: 30 }) }),
  },
);

const rowId = (n: number) => `r${String(n).padStart(3, '0')}`;

describe('OrderedRows', () => {
  it('matches a full sort after any sequence of changes, and never changes a list it handed out', () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 200 }),
        fc.array(fc.boolean(), { maxLength: 200 }),
        (ops, reads) => {
          const rows = new OrderedRows<Row>();
          // The reference: every row, with the moment it (last) arrived without a created_sync_id.
          const model = new Map<string, { row: Row; arrival: number }>();
          let arrival = 0;
          const handedOut: { list: readonly Row[]; copy: Row[] }[] = [];
          ops.forEach((o, i) => {
            const id = rowId(o.id);
            if (o.k === 'delete') {
              rows.delete(id);
              model.delete(id);
            } else {
              const row: Row = o.sync === null ? { id, v: o.v } : { id, created_sync_id: o.sync, v: o.v };
              const prev = model.get(id);
              const keepsPlace = prev && prev.row.created_sync_id === row.created_sync_id;
              model.set(id, { row, arrival: keepsPlace ? prev.arrival : arrival++ });
              rows.set(row);
            }
            if (reads[i]) {
              const list = rows.list();
              handedOut.push({ list, copy: [...list] });
            }
          });
          const expected = [...model.values()]
            .sort((a, b) => {
              const sa = a.row.created_sync_id ?? Number.POSITIVE_INFINITY;
              const sb = b.row.created_sync_id ?? Number.POSITIVE_INFINITY;
              if (sa !== sb) return sa - sb;
              if (sa === Number.POSITIVE_INFINITY && a.arrival !== b.arrival) return a.arrival - b.arrival;
              return a.row.id < b.row.id ? -1 : 1;
            })
            .map((e) => e.row);
          expect(rows.list()).toEqual(expected);
          expect(rows.size).toBe(expected.length);
          for (const e of expected) expect(rows.get(e.id)).toBe(e);
          for (const h of handedOut) expect(h.list).toEqual(h.copy);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('places a large batch (one sort and build) exactly as one change at a time would', () => {
    const row = fc.record({
      id: fc.integer({ min: 0, max: 1_500 }).map(rowId),
      sync: fc.option(fc.integer({ min: 1, max: 400 })),
      v: fc.nat(),
    });
    const batch = fc
      .array(row, { minLength: 260, maxLength: 700, size: 'max' })
      // One change per id in a batch, as a commit has.
      .map((rows) => [...new Map(rows.map((r) => [r.id, r])).values()]);
    fc.assert(
      fc.property(fc.array(batch, { minLength: 1, maxLength: 3 }), (batches) => {
        const bulk = new OrderedRows<Row>();
        const single = new OrderedRows<Row>();
        for (const rows of batches) {
          const made = rows.map(
            (r): Row =>
              r.sync === null ? { id: r.id, v: r.v } : { id: r.id, created_sync_id: r.sync, v: r.v },
          );
          const before = bulk.list();
          const copy = [...before];
          bulk.setMany(made);
          for (const r of made) single.set(r);
          expect(before).toEqual(copy);
          expect(bulk.list()).toEqual(single.list());
        }
      }),
      { numRuns: 40 },
    );
  });
});
