import { describe, expect, it } from 'vitest';
import { resultLines, toRetry } from '../../lab/run.js';

describe('the Xen lab runner', () => {
  const log = [
    '[   12.1] noise on the console',
    'LAB: scenario balloon start at 21s', 'PASS: balloon: g1 moved', 'LAB: scenario balloon end rc=0 after 3 ms',
    'LAB: scenario grow start at 30s', 'FAIL: grow: g1 did not grow', 'PASS: grow: g1 holds', 'LAB: scenario grow end rc=0 after 9 ms',
    'LAB: scenario stuck start at 40s', 'PASS: stuck: flagged\r', 'LAB: scenario stuck end rc=0 after 4 ms',
    'LAB: scenario admit start at 50s', 'PASS: admit: refused',
  ].join('\n');

  it('keeps only result lines from the serial console, without carriage returns', () => {
    const lines = resultLines(log);
    expect(lines).not.toContain('[   12.1] noise on the console');
    expect(lines).toContain('PASS: stuck: flagged');
  });

  it('retries the scenarios that failed and those a crash or timeout cut short, in running order', () => {
    const lines = resultLines(log);
    expect(toRetry({ lines }, ['balloon', 'grow', 'stuck', 'admit', 'qmemman'])).toEqual(['grow', 'admit', 'qmemman']);
    expect(toRetry({ lines }, ['balloon', 'stuck'])).toEqual([]);
  });
});
