/** `clonebox health alert test` and `health silence add|list|remove`: the logic behind the thin oclif commands. */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { notificationId } from '../alerting/decide.js';
import { createProvider, providerName } from '../alerting/providers/index.js';
import { alertSettings } from '../alerting/decide.js';
import { DeliveryError, PAYLOAD_VERSION, type AlertNotification, type Silence } from '../alerting/types.js';
import { formatDuration } from '../config/duration.js';
import { didYouMean } from '../util/did-you-mean.js';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import type { CloneboxConfig } from '../config/schema.js';
import { UsageError } from '../engine/fleet.js';
import { openStore } from '../store/index.js';
import type { HealthStore } from '../store/types.js';
import { scrubSecrets } from '../util/redact.js';
import type { CommandIO } from './check.js';

export interface AlertTestOptions {
  config: string;
  /** Only these providers (by name). */
  provider?: string[];
  json: boolean;
}

export interface AlertTestResult {
  provider: string;
  type: string;
  delivered: boolean;
  /** Why not (secrets scrubbed). */
  error?: string;
  duration_ms: number;
}

export function testNotification(now = Date.now(), host = hostname()): AlertNotification {
  const at = new Date(now).toISOString();
  return {
    version: PAYLOAD_VERSION,
    id: notificationId('clonebox-test', 'test', now, 0),
    event: 'test',
    status: 'firing',
    alertname: 'CloneboxTest',
    alert_key: 'clonebox-test',
    scope: 'vm',
    vm: 'clonebox-test',
    tags: [],
    severity: 'warning',
    state: 'HEALTHY',
    previous_state: null,
    message: `clonebox test notification from ${host}: alerting reaches this receiver`,
    since: at,
    at,
    repeat: 0,
    links: {},
  };
}

/** Sends one test notification through each chosen provider, all at once; exit 0 when every one took it, else 2. */
export async function runAlertTest(opts: AlertTestOptions, io: CommandIO): Promise<number> {
  const config = await loadConfig(opts.config);
  const configured = config.alerting?.providers ?? [];
  if (configured.length === 0) throw new UsageError(`no alerting providers in ${opts.config}; add alerting.providers (see docs/alerting.md)`);
  const names = configured.map(providerName);
  for (const want of opts.provider ?? []) {
    if (!names.includes(want)) {
      const hint = didYouMean(want, names);
      throw new UsageError(`no provider named "${want}" in ${opts.config}${hint ? `; did you mean "${hint}"?` : `; configured: ${names.join(', ')}`}`);
    }
  }
  const chosen = configured.filter((p) => !opts.provider?.length || opts.provider.includes(providerName(p)));
  const settings = alertSettings(config.alerting);
  const n = testNotification();
  const results = await Promise.all(
    chosen.map(async (cfg): Promise<AlertTestResult> => {
      const p = createProvider(cfg, { repeatIntervalMs: settings.repeatIntervalMs });
      const t0 = performance.now();
      try {
        await p.send(n, AbortSignal.timeout(p.timeoutMs));
        return { provider: p.name, type: p.type, delivered: true, duration_ms: Math.round(performance.now() - t0) };
      } catch (err) {
        const why = err instanceof DeliveryError ? err.message : `unexpected error: ${(err as Error).message}`;
        return { provider: p.name, type: p.type, delivered: false, error: scrubSecrets(why, p.secrets), duration_ms: Math.round(performance.now() - t0) };
      }
    }),
  );
  if (opts.json) io.stdout.write(`${JSON.stringify({ notification_id: n.id, results })}\n`);
  else {
    const width = Math.max(...results.map((r) => `${r.provider} (${r.type})`.length));
    for (const r of results) {
      const label = `${r.provider} (${r.type})`.padEnd(width);
      io.stdout.write(`${label}  ${r.delivered ? `delivered in ${r.duration_ms}ms` : `NOT delivered: ${r.error}`}\n`);
    }
  }
  return results.every((r) => r.delivered) ? 0 : 2;
}

// ─── silences ───

export interface StoreChoice {
  store?: string;
  config?: string;
}

/** --store, else the config's history.store (when a config is there), else the default store: as `health history`. */
async function openChosenStore(opts: StoreChoice): Promise<HealthStore> {
  let spec = opts.store;
  let config: CloneboxConfig | undefined;
  if (spec === undefined) {
    const file = opts.config ?? DEFAULT_CONFIG_FILE;
    if (opts.config !== undefined || existsSync(file)) config = await loadConfig(file);
    spec = config?.history?.store;
  }
  try {
    return await openStore(spec);
  } catch (err) {
    throw new UsageError(`cannot open the history store ${spec ?? '(default)'}: ${(err as Error).message}`);
  }
}

export interface SilenceAddOptions extends StoreChoice {
  vm: string;
  check?: string;
  forMs: number;
  reason?: string;
  json: boolean;
}

function describeSilence(s: Silence, now: number): string {
  const what = `${s.vm}${s.check ? `/${s.check}` : ' (every check and the VM alert)'}`;
  const when = s.ends_at <= now ? `ended ${new Date(s.ends_at).toISOString()}` : `until ${new Date(s.ends_at).toISOString()} (${formatDuration(s.ends_at - now)} left)`;
  return `${s.id}  ${what}  ${when}${s.created_by ? `  by ${s.created_by}` : ''}: ${s.reason}`;
}

export async function runSilenceAdd(opts: SilenceAddOptions, io: CommandIO, now = Date.now()): Promise<number> {
  const store = await openChosenStore(opts);
  try {
    const s: Silence = {
      id: randomBytes(4).toString('hex'),
      vm: opts.vm,
      ...(opts.check ? { check: opts.check } : {}),
      starts_at: now,
      ends_at: now + opts.forMs,
      reason: opts.reason ?? '(no reason given)',
      ...(process.env.SUDO_USER || process.env.USER ? { created_by: (process.env.SUDO_USER || process.env.USER)! } : {}),
      created_at: now,
    };
    await store.addSilence(s);
    io.stdout.write(opts.json ? `${JSON.stringify(s)}\n` : `silenced: ${describeSilence(s, now)}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

export async function runSilenceList(opts: StoreChoice & { all: boolean; json: boolean }, io: CommandIO, now = Date.now()): Promise<number> {
  const store = await openChosenStore(opts);
  try {
    const list = await store.silences(now, opts.all);
    if (opts.json) io.stdout.write(`${JSON.stringify(list)}\n`);
    else if (list.length === 0) io.stdout.write(opts.all ? 'no silences\n' : 'no silences in force\n');
    else for (const s of list) io.stdout.write(`${describeSilence(s, now)}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

export async function runSilenceRemove(opts: StoreChoice & { id: string }, io: CommandIO): Promise<number> {
  const store = await openChosenStore(opts);
  try {
    if (!(await store.removeSilence(opts.id))) {
      const ids = (await store.silences(Date.now(), true)).map((s) => s.id);
      throw new UsageError(`no silence with id ${opts.id}${ids.length ? ` (silences: ${ids.slice(0, 10).join(', ')})` : ''}; see \`clonebox health silence list --all\``);
    }
    io.stdout.write(`removed silence ${opts.id}\n`);
    return 0;
  } finally {
    await store.close();
  }
}
