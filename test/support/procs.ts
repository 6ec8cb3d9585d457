/** Looking at processes on this machine from tests: by command line, and polling for a condition. */
import { readdir, readFile } from 'node:fs/promises';

/** Pids of processes whose command line contains `needle` (read from /proc). */
export async function processesWith(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replace(/\0/g, ' ');
      if (cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return pids;
}

/** Poll `check` every 25 ms until it is true or `ms` pass; returns whether it became true. */
export async function eventually(check: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A unique `sleep` duration: its command line identifies the remote process. */
export const uniqueSleep = (): string => `300.${Math.floor(Math.random() * 1e9)}`;
