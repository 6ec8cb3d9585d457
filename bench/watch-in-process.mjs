/**
 * A real `health watch` (`runWatch`, the loop, thresholds and outputs) in this process, for the bench scripts that
 * look inside a round (watch-alloc.mjs, watch-prof.mjs): `onRound(n)` is awaited at the end of each round; the watch
 * stops after `rounds`.
 */
import { runWatch } from '../dist/cli/watch.js';

export async function watchInProcess({ config, intervalS, rounds, onRound }) {
  let n = 0;
  // --json lines: a round line marks the end of each round; nothing else is printed.
  const io = {
    stdout: { isTTY: false, write: (line) => (String(line).includes('"type":"round"') && void onRound(++n), true) },
    stderr: { write: () => true },
  };
  await runWatch(
    { vms: [], config, all: true, json: true, concurrency: 32, verbose: false, acceptNewHostKeys: false, libvirtBackend: 'auto', intervalMs: intervalS * 1000, noStore: true, rounds },
    io,
    new AbortController().signal,
  );
}
