/** op()'s hourly warnings (hourly-warning.ts): said once an hour per key, with a bounded memory. */
import { warnAtMostHourly } from '../src/hourly-warning.js';

test('past 100 keys only the one said longest ago is forgotten: the others are not said again within the hour', () => {
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  try {
    for (let i = 0; i < 100; i++) warnAtMostHourly(`key-${i}`, `condition ${i}`);
    expect(warn).toHaveBeenCalledTimes(100);
    warnAtMostHourly('key-100', 'condition 100'); // the 101st: key-0 is forgotten
    warnAtMostHourly('key-50', 'condition 50'); // before: the memory was wiped at 100, and this was said again
    warnAtMostHourly('key-0', 'condition 0');
    expect(warn.mock.calls.map((c) => String(c[0]))).toEqual([
      ...Array.from({ length: 100 }, (_, i) => `op(): condition ${i} (Said at most once an hour.)`),
      'op(): condition 100 (Said at most once an hour.)',
      'op(): condition 0 (Said at most once an hour.)',
    ]);
  } finally {
    warn.mockRestore();
  }
});
