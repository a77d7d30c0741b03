import { type FunctionComponent, memo, type ReactNode } from 'react';

const MEMO = Symbol.for('react.memo');

type Memoised<P> = {
  $$typeof: symbol;
  type: (props: P) => ReactNode;
  compare: ((a: P, b: P) => boolean) | null;
};

/**
 * For render-count tests: `component` as it is — memoised or not, with the same comparison — but
 * calling `onRender(props)` each time it renders. Used through `vi.mock` of the module that
 * exports it, so the component under test is the real one and only the counting is added:
 * dropping its `memo`, or handing it a new prop per render, shows up as more renders.
 */
export function countingRenders<P extends object>(
  component: FunctionComponent<P> | Memoised<P>,
  onRender: (props: P) => void,
): FunctionComponent<P> {
  const m = component as Partial<Memoised<P>>;
  if (m.$$typeof === MEMO && m.type) {
    const inner = m.type;
    const counted = (props: P) => {
      onRender(props);
      return inner(props);
    };
    return memo(counted, m.compare ?? undefined) as unknown as FunctionComponent<P>;
  }
  const plain = component as (props: P) => ReactNode;
  return (props: P) => {
    onRender(props);
    return plain(props);
  };
}
