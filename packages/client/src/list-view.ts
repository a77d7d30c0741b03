import { type Node, treeAt, treeRange, treeSize, treeToArray } from './row-tree';

/** A canonical array index ("0", "17"; not "01", "-1", "1.5"), or undefined. */
function arrayIndex(key: string): number | undefined {
  const c = key.charCodeAt(0);
  if (c < 48 || c > 57) return undefined;
  const n = Number(key);
  return Number.isInteger(n) && String(n) === key ? n : undefined;
}

const READ_ONLY = () => {
  throw new TypeError('a records list is read-only: copy it first ([...list])');
};

/**
 * A frozen array over one version of a persistent tree, made in O(1) and materialised only when
 * needed. Reading `length`, an index, `at()` or `slice()` goes to the tree (O(log n) each, plus
 * what `slice` returns) — all a virtualised list reads per render. Anything else (`map`,
 * iteration, `Object.keys`, equality in tests) first copies the tree into the backing array,
 * once per version, and from then on it is that array. `Array.isArray` is true and the array is
 * frozen, so it passes for the `readonly T[]` it is typed as; it cannot be structured-cloned
 * (copy it first).
 */
export function listView<T>(root: Node<T>): readonly T[] {
  const size = treeSize(root);
  const target: T[] = [];
  let full = size === 0;
  if (full) Object.freeze(target);
  const materialise = (): T[] => {
    if (!full) {
      treeToArray(root, target);
      Object.freeze(target);
      full = true;
    }
    return target;
  };
  const at = (index: number): T | undefined => {
    const i = Math.trunc(Number(index)) || 0;
    return treeAt(root, i < 0 ? i + size : i);
  };
  const slice = (start?: number, end?: number): T[] => {
    const norm = (v: number | undefined, fallback: number) => {
      if (v === undefined) return fallback;
      const i = Math.trunc(Number(v)) || 0;
      return i < 0 ? Math.max(size + i, 0) : Math.min(i, size);
    };
    const out: T[] = [];
    treeRange(root, norm(start, 0), norm(end, size), out);
    return out;
  };
  return new Proxy(target, {
    get(_, key, receiver) {
      if (!full) {
        if (typeof key === 'string') {
          const index = arrayIndex(key);
          if (index !== undefined) return treeAt(root, index);
        }
        if (key === 'length') return size;
        if (key === 'at') return at;
        if (key === 'slice') return slice;
      }
      return Reflect.get(materialise(), key, receiver);
    },
    has: (_, key) => Reflect.has(materialise(), key),
    ownKeys: () => Reflect.ownKeys(materialise()),
    getOwnPropertyDescriptor: (_, key) => Reflect.getOwnPropertyDescriptor(materialise(), key),
    set: READ_ONLY,
    defineProperty: READ_ONLY,
    deleteProperty: READ_ONLY,
    setPrototypeOf: READ_ONLY,
  });
}
