/** `clonebox health history`: read a VM's recorded results back as uptime, durations, transitions and a timeline. */
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import { didYouMean } from '../util/did-you-mean.js';
import { UsageError } from '../engine/fleet.js';
import { renderHistory, renderHistoryJson, summarizeHistory } from '../outputs/history.js';
import { wantColor } from '../outputs/types.js';
import { openStore, storeOpenError } from '../store/index.js';
import type { CommandIO } from './check.js';
import { existsSync } from 'node:fs';

export interface HistoryCommandOptions {
  vm: string;
  lastMs: number;
  /** Only these checks. */
  probe?: string[];
  json: boolean;
  store?: string;
  config?: string;
  utc: boolean;
}

export async function runHistory(opts: HistoryCommandOptions, io: CommandIO): Promise<number> {
  // The store comes from --store, else the config's history.store (when a config is there), else the default.
  let spec = opts.store;
  if (spec === undefined) {
    const file = opts.config ?? DEFAULT_CONFIG_FILE;
    if (opts.config !== undefined || existsSync(file)) spec = (await loadConfig(file)).history?.store;
  }
  let store;
  try {
    store = await openStore(spec);
  } catch (err) {
    throw new UsageError(storeOpenError(spec, err));
  }
  try {
    const untilMs = Date.now();
    const sinceMs = untilMs - opts.lastMs;
    const only = opts.probe?.length ? new Set(opts.probe) : undefined;
    // One check: the store filters; several: filtered here.
    const q = { vm: opts.vm, sinceMs, ...(only?.size === 1 ? { check: [...only][0]! } : {}) };
    const keep = <T extends { check: string }>(rows: T[]): T[] => (only ? rows.filter((r) => only.has(r.check)) : rows);
    const [results, transitions, actions, states] = await Promise.all([
      store.history(q).then(keep),
      store.transitions(q).then(keep),
      store.actions(q).then(keep),
      store.loadStates([opts.vm]),
    ]);
    if (results.length === 0 && transitions.length === 0) {
      const known = await store.knownVms();
      if (!known.includes(opts.vm)) {
        const hint = didYouMean(opts.vm, known);
        throw new UsageError(
          `no history for VM "${opts.vm}" in ${store.location}${hint ? `; did you mean "${hint}"?` : known.length ? ` (VMs with history: ${known.slice(0, 10).join(', ')})` : '; record some with `health watch` or `health check --store`'}`,
        );
      }
    }
    const vmStates = states.get(opts.vm);
    const summary = summarizeHistory({
      vm: opts.vm,
      sinceMs,
      untilMs,
      results,
      transitions,
      actions,
      ...(vmStates ? { states: only ? new Map([...vmStates].filter(([k]) => only.has(k))) : vmStates } : {}),
    });
    io.stdout.write(opts.json ? renderHistoryJson(summary) : renderHistory(summary, { color: wantColor(io.stdout), timeZone: opts.utc ? 'UTC' : 'local' }));
    return 0;
  } finally {
    await store.close();
  }
}
