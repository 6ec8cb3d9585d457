import { describe, expect, it } from 'vitest';
import { MinHeap } from '../../src/util/min-heap.js';
import { seededRandom } from '../../src/engine/scheduler.js';

describe('MinHeap', () => {
  it('pops in order, ties in push order when the comparison says so, across interleaved pushes and pops', () => {
    const random = seededRandom(7);
    let seq = 0;
    const heap = new MinHeap<{ k: number; s: number }>((a, b) => a.k < b.k || (a.k === b.k && a.s < b.s));
    const model: { k: number; s: number }[] = [];
    for (let step = 0; step < 5000; step++) {
      if (random() < 0.6 || model.length === 0) {
        const item = { k: Math.floor(random() * 50), s: seq++ };
        heap.push(item);
        model.push(item);
      } else {
        model.sort((a, b) => a.k - b.k || a.s - b.s);
        expect(heap.peek()).toBe(model[0]);
        expect(heap.pop()).toBe(model.shift());
      }
      expect(heap.size).toBe(model.length);
    }
    model.sort((a, b) => a.k - b.k || a.s - b.s);
    const rest: { k: number; s: number }[] = [];
    for (let x = heap.pop(); x; x = heap.pop()) rest.push(x);
    expect(rest).toEqual(model);
    expect(heap.pop()).toBeUndefined();
    expect(heap.peek()).toBeUndefined();
  });

  it('clear empties it', () => {
    const heap = new MinHeap<number>((a, b) => a < b);
    [3, 1, 2].forEach((x) => heap.push(x));
    heap.clear();
    expect(heap.size).toBe(0);
    expect(heap.pop()).toBeUndefined();
  });
});
