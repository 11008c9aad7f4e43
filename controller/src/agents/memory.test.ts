import { afterEach, expect, it, vi } from 'vitest';
import { fullCollection, MemoryReclaimer } from './memory.ts';

const log = { info: vi.fn() } as never;
afterEach(() => vi.useRealTimers());

it('collects once, after a burst of at least `threshold` syncs has been quiet for `quietMs`', () => {
  vi.useFakeTimers();
  const collect = vi.fn();
  const reclaimer = new MemoryReclaimer(log, { threshold: 100, quietMs: 1_000 }, collect);
  reclaimer.note(60);
  vi.advanceTimersByTime(5_000);
  expect(collect).not.toHaveBeenCalled(); // below the threshold: not worth a collection
  reclaimer.note(60);
  vi.advanceTimersByTime(900);
  reclaimer.note(10); // the burst goes on: the quiet period starts again
  vi.advanceTimersByTime(900);
  expect(collect).not.toHaveBeenCalled();
  vi.advanceTimersByTime(100);
  expect(collect).toHaveBeenCalledTimes(1);
  vi.advanceTimersByTime(10_000);
  expect(collect).toHaveBeenCalledTimes(1);
  // The count starts again from the collection.
  reclaimer.note(99);
  vi.advanceTimersByTime(10_000);
  expect(collect).toHaveBeenCalledTimes(1);
  reclaimer.note(1);
  vi.advanceTimersByTime(1_000);
  expect(collect).toHaveBeenCalledTimes(2);
  reclaimer.stop();
});

it('stop() cancels a pending collection', () => {
  vi.useFakeTimers();
  const collect = vi.fn();
  const reclaimer = new MemoryReclaimer(log, { threshold: 1, quietMs: 1_000 }, collect);
  reclaimer.note(5);
  reclaimer.stop();
  vi.advanceTimersByTime(5_000);
  expect(collect).not.toHaveBeenCalled();
});

it("has V8's full collection here, and it gives garbage back", () => {
  const gc = fullCollection();
  expect(gc).toBeTypeOf('function');
  let garbage: unknown[] | undefined = Array.from({ length: 200_000 }, (_, i) => ({ i, text: `item ${i}` }));
  const withGarbage = process.memoryUsage().heapUsed;
  expect(garbage.length).toBe(200_000);
  garbage = undefined;
  gc!();
  expect(process.memoryUsage().heapUsed).toBeLessThan(withGarbage - 5 * 2 ** 20);
});
