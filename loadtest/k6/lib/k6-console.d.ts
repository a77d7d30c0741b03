// k6 provides console in every VU; @types/k6 does not declare it and these scripts have no DOM lib.
declare const console: {
  log(...values: unknown[]): void;
  warn(...values: unknown[]): void;
  error(...values: unknown[]): void;
};
