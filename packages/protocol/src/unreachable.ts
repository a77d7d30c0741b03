/** Ends an exhaustive switch: a type error if a case is missing, a throw if one arrives anyway. */
export function unreachable(value: never): never {
  throw new Error(`unreachable: ${JSON.stringify(value)}`);
}
