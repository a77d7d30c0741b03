import { describe, expect, it } from 'vitest';
import { readCpuSeconds, readRssKiB } from './rss';

describe('process figures from /proc', () => {
  it('reads this process: RSS in KiB and CPU seconds that grow with work', () => {
    expect(readRssKiB(process.pid)).toBeGreaterThan(1024);
    const before = readCpuSeconds(process.pid);
    expect(before).toBeGreaterThan(0);
    const until = performance.now() + 150;
    let spin = 0;
    while (performance.now() < until) spin++;
    expect(spin).toBeGreaterThan(0);
    expect(readCpuSeconds(process.pid)).toBeGreaterThan(before);
  });

  it('answers NaN for a process that does not exist', () => {
    expect(readRssKiB(2 ** 30)).toBeNaN();
    expect(readCpuSeconds(2 ** 30)).toBeNaN();
  });
});
