import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { listView } from './list-view';
import {
  buildTree,
  emptyTree,
  type Node,
  treeAt,
  treeInsert,
  treeReplace,
  treeSize,
  treeToArray,
} from './row-tree';

type Item = { key: number; v: number };
const compare = (a: Item, b: Item) => a.key - b.key;
type Op = { k: 'insert' | 'replace' | 'delete'; key: number; v: number };

const ops = fc.array(
  fc.record({
    k: fc.constantFrom('insert' as const, 'insert' as const, 'replace' as const, 'delete' as const),
    key: fc.integer({ min: 0, max: 2_000 }),
    v: fc.nat(),
  }),
  // fast-check keeps arrays short by default: these must be long enough to split leaves.
  { minLength: 200, maxLength: 900, size: 'max' },
);

describe('row tree', () => {
  it('matches a sorted array after any changes, across splits, and leaves every old version intact', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 2_000 }), { minLength: 60, maxLength: 400, size: 'max' }),
        ops,
        (seed, changes) => {
          const model = new Map<number, Item>();
          for (const key of seed) model.set(key, { key, v: 0 });
          let tree: Node<Item> = buildTree([...model.values()].sort(compare));
          const versions: { tree: Node<Item>; copy: Item[] }[] = [];
          for (const [i, o] of (changes as Op[]).entries()) {
            const has = model.has(o.key);
            if (o.k === 'insert' && !has) {
              const item = { key: o.key, v: o.v };
              model.set(o.key, item);
              tree = treeInsert(tree, item, compare);
            } else if (o.k === 'replace' && has) {
              const item = { key: o.key, v: o.v };
              model.set(o.key, item);
              tree = treeReplace(tree, item, item, compare)!;
            } else if (o.k === 'delete') {
              const next = treeReplace(tree, { key: o.key, v: 0 }, null, compare);
              expect(next === undefined).toBe(!has);
              if (next) tree = next;
              model.delete(o.key);
            }
            if (i % 50 === 0) versions.push({ tree, copy: treeToArray(tree) });
          }
          const expected = [...model.values()].sort(compare);
          expect(treeSize(tree)).toBe(expected.length);
          expect(treeToArray(tree)).toEqual(expected);
          for (let i = -1; i <= expected.length; i += Math.max(1, expected.length >> 4)) {
            expect(treeAt(tree, i)).toBe(expected[i]);
          }
          for (const v of versions) expect(treeToArray(v.tree)).toEqual(v.copy);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('builds any sorted array into a tree that reads back the same', () => {
    for (const n of [0, 1, 47, 48, 49, 64, 65, 3_000, 10_000]) {
      const items = Array.from({ length: n }, (_, key) => ({ key, v: key }));
      const tree = buildTree(items);
      expect(treeToArray(tree)).toEqual(items);
      expect(treeAt(tree, n - 1)).toBe(items[n - 1]);
      expect(treeAt(emptyTree<Item>(), 0)).toBeUndefined();
    }
  });
});

describe('list view', () => {
  const items = Array.from({ length: 5_000 }, (_, key) => ({ key, v: key * 2 }));
  const fresh = () => listView(buildTree(items));

  it('reads length, indexes, at() and slice() like the array', () => {
    fc.assert(
      fc.property(
        fc.option(fc.integer({ min: -6_000, max: 6_000 }), { nil: undefined }),
        fc.option(fc.integer({ min: -6_000, max: 6_000 }), { nil: undefined }),
        (start, end) => {
          const view = fresh();
          expect(view.length).toBe(items.length);
          expect(view.slice(start, end)).toEqual(items.slice(start, end));
          if (start !== undefined) {
            expect(view.at(start)).toBe(items.at(start));
            expect(view[start]).toBe(items[start]);
          }
        },
      ),
    );
  });

  it('passes for a frozen array everywhere else', () => {
    const view = fresh();
    expect(Array.isArray(view)).toBe(true);
    expect(view).toEqual(items);
    expect(view.map((i) => i.v)).toEqual(items.map((i) => i.v));
    expect([...view]).toEqual(items);
    expect(JSON.parse(JSON.stringify(listView(buildTree(items.slice(0, 3)))))).toEqual(items.slice(0, 3));
    expect(Object.keys(listView(buildTree(items.slice(0, 2))))).toEqual(['0', '1']);
    expect(() => {
      (view as Item[])[0] = items[1]!;
    }).toThrow(TypeError);
    expect(() => (view as Item[]).push(items[0]!)).toThrow(TypeError);
    expect(listView(emptyTree())).toEqual([]);
  });
});
