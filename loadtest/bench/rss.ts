import { readFileSync } from 'node:fs';

/** Resident set size of a process in KiB, from /proc (Linux); NaN when it cannot be read. */
export function readRssKiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
