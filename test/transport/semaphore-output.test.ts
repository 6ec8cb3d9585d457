import { describe, expect, it } from 'vitest';
import { OutputCap, withLifeline } from '../../src/transport/exec.js';
import { Semaphore } from '../../src/transport/semaphore.js';

describe('Semaphore', () => {
  it('admits `limit` holders and serves waiters first in, first out', async () => {
    const sem = new Semaphore(2);
    const r1 = await sem.acquire();
    const r2 = await sem.acquire();
    const order: number[] = [];
    const w3 = sem.acquire().then((r) => (order.push(3), r));
    const w4 = sem.acquire().then((r) => (order.push(4), r));
    expect(sem.active).toBe(2);
    expect(sem.waiting).toBe(2);
    r1();
    r1(); // releasing twice frees one slot only
    const r3 = await w3;
    expect(sem.waiting).toBe(1);
    r2();
    const r4 = await w4;
    expect(order).toEqual([3, 4]);
    r3();
    r4();
    expect(sem.active).toBe(0);
  });

  it('drops an aborted waiter from the queue', async () => {
    const sem = new Semaphore(1);
    const held = await sem.acquire();
    const ac = new AbortController();
    const aborted = sem.acquire(ac.signal);
    const next = sem.acquire();
    ac.abort(new Error('probe timed out'));
    await expect(aborted).rejects.toThrow('probe timed out');
    expect(sem.waiting).toBe(1);
    held();
    (await next)();
    expect(sem.active).toBe(0);
  });
});

describe('OutputCap', () => {
  it.each([
    // [chunks, limit, text, truncated, why]
    [['hello ', 'world'], 100, 'hello world', false, 'under the cap'],
    [['hello ', 'world'], 8, 'hello wo', true, 'cut inside a later chunk'],
    [['abc'], 3, 'abc', false, 'exactly the cap is not truncated'],
    [['aé'], 2, 'a', true, 'a cut UTF-8 character is dropped, not mangled'],
    [['€€'], 4, '€', true, '3-byte character cut after its first byte'],
  ])('%j cap %i → %j (%s)', (chunks, limit, text, truncated) => {
    const cap = new OutputCap(limit);
    for (const c of chunks) cap.push(Buffer.from(c));
    expect(cap.text()).toBe(text);
    expect(cap.truncated).toBe(truncated);
    expect(cap.total).toBe(Buffer.byteLength(chunks.join('')));
  });
});

describe('withLifeline', () => {
  it('keeps the command text as written, after the prologue', () => {
    expect(withLifeline('echo "a b"; exit 3').endsWith('\necho "a b"; exit 3')).toBe(true);
  });
});
