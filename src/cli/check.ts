/** `clonebox health check`: the library call behind the thin oclif command. */
import { deliverAtEnd } from '../alerting/cron.js';
import { alertingFromConfig } from '../alerting/runtime.js';
import { loadConfig } from '../config/load.js';
import { describeSsh, libvirtUri, SshConfigCache } from '../config/resolve.js';
import { runFleetRound, UsageError } from '../engine/fleet.js';
import { advanceWithStore, describeAction, summarizeAction } from '../engine/stateful.js';
import type { HealthStore } from '../store/types.js';
import { BackendCache, openBackend, type BackendChoice } from '../inventory/open.js';
import type { LibvirtBackend } from '../inventory/types.js';
import { OUTPUTS, wantColor, writeOutputFile, type OutputName } from '../outputs/index.js';
import { EXIT_CODES, type FleetReport } from '../report.js';
import { SshPool } from '../transport/ssh-pool.js';
import { redactText } from '../util/redact.js';
import { interactive, StatusLine } from './progress.js';
import { gatePasses, waitUntilHealthy, type FailOn } from './wait.js';

export interface CheckCommandOptions {
  vms: string[];
  config: string;
  all: boolean;
  probe?: string[];
  json: boolean;
  /** Report formats; each may go to stdout or a file (`--output junit --output-file r.xml`). */
  outputs?: OutputName[];
  outputFiles?: string[];
  connect?: string;
  concurrency: number;
  verbose: boolean;
  acceptNewHostKeys: boolean;
  libvirtBackend: BackendChoice;
  /** History store spec (`default`, a path, `postgres://…`): makes the run stateful. */
  store?: string;
  /** Ignore a store configured in the file: raw results, nothing recorded. */
  noStore?: boolean;
  /** Re-run until the gate passes or this many ms pass (the CI gate). */
  waitMs?: number;
  waitIntervalMs?: number;
  failOn?: FailOn;
}

export interface CommandIO {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
}

/**
 * Exit code: the fleet's status (0/1/2/3). With --fail-on unhealthy a DEGRADED fleet passes the gate
 * and exits 0; UNKNOWN never passes.
 */
export function exitCodeFor(report: FleetReport, failOn: FailOn): number {
  if (failOn === 'unhealthy' && gatePasses(report, failOn)) return 0;
  return EXIT_CODES[report.summary.overall_status];
}

/**
 * Render every requested output. `--output a --output b --output-file x` pairs files with outputs
 * from the end: the last N outputs go to the N files, the rest to stdout. Files are replaced
 * atomically, so a reader (node_exporter's textfile collector) never sees half a report.
 */
export async function emit(report: FleetReport, opts: Pick<CheckCommandOptions, 'outputs' | 'outputFiles' | 'json' | 'verbose'>, io: CommandIO): Promise<void> {
  const names: OutputName[] = opts.outputs?.length ? opts.outputs : [opts.json ? 'json' : 'table'];
  const files = opts.outputFiles ?? [];
  if (files.length > names.length) throw new UsageError(`${files.length} --output-file given for ${names.length} --output; name a format for each file`);
  const toStdout = names.length - files.length;
  for (const [i, name] of names.entries()) {
    const file = i >= toStdout ? files[i - toStdout] : undefined;
    const text = OUTPUTS[name].render(report, { color: !file && wantColor(io.stdout), verbose: opts.verbose });
    if (file) await writeOutputFile(file, text);
    else io.stdout.write(text);
  }
}

export async function runCheck(opts: CheckCommandOptions, rawIo: CommandIO, signal: AbortSignal, env: NodeJS.ProcessEnv = process.env): Promise<{ exitCode: number; report: FleetReport }> {
  // Progress on a terminal (src/cli/progress.ts): every stderr write below goes through it, so none lands mid-line.
  const status = new StatusLine(rawIo.stderr, { live: interactive(rawIo.stderr, env) });
  const io: CommandIO = { stdout: rawIo.stdout, stderr: status.stderr };
  try {
    return await checkOnce(opts, io, signal, status);
  } finally {
    status.close();
  }
}

async function checkOnce(opts: CheckCommandOptions, io: CommandIO, signal: AbortSignal, status: StatusLine): Promise<{ exitCode: number; report: FleetReport }> {
  const config = await loadConfig(opts.config);
  if (config.hypervisors?.length && opts.connect) {
    throw new UsageError(`--connect names one libvirt, but ${opts.config} lists hypervisors:; leave out --connect, or the hypervisors: list`);
  }
  const uri = libvirtUri(config, opts.connect);
  const log = (msg: string) => (opts.verbose ? io.stderr.write(`clonebox: ${redactText(msg)}\n`) : undefined);
  const backends = new BackendCache(opts.libvirtBackend, log);
  let backend: Promise<LibvirtBackend> | undefined;
  const pool = new SshPool({ log, ...(opts.waitMs !== undefined ? { maxBackoffMs: opts.waitIntervalMs ?? 5000 } : {}) });
  const failOn = opts.failOn ?? 'any';
  const storeSpec = opts.noStore ? undefined : (opts.store ?? config.history?.store);
  let store: HealthStore | undefined;
  if (storeSpec !== undefined) {
    const { openStore, storeOpenError } = await import('../store/index.js');
    try {
      store = await openStore(storeSpec, { retentionMs: config.history?.retention ?? 30 * 86_400_000 });
    } catch (err) {
      throw new UsageError(storeOpenError(storeSpec, err));
    }
    log(`history: ${store.kind} at ${store.location}`);
  }
  const sshConfigs = new SshConfigCache();
  const said = new Map<string, string>();
  // Alerting needs the store: its outbox is written in the round's transaction (docs/alerting.md).
  const alerting = store ? alertingFromConfig(config) : undefined;
  const round = async (roundSignal: AbortSignal): Promise<FleetReport> => {
    status.beginRound();
    try {
      return await checkRound(roundSignal);
    } finally {
      status.endRound();
    }
  };
  const checkRound = async (roundSignal: AbortSignal): Promise<FleetReport> => {
    const r = await runFleetRound({
      config,
      selectors: opts.vms,
      all: opts.all,
      ...(opts.probe ? { probes: opts.probe } : {}),
      concurrency: opts.concurrency,
      backend: () => (backend ??= openBackend(uri, opts.libvirtBackend, log)),
      backendFor: (hv) => backends.get(hv.uri),
      pool,
      signal: roundSignal,
      acceptNewHostKeys: opts.acceptNewHostKeys,
      sshConfigs,
      // -v: each VM's effective SSH settings and where each came from, once per run (and again if they change).
      onResolved: (vm, t) => {
        const line = describeSsh(vm.name, vm.ssh, t.address);
        if (said.get(vm.name) !== line) {
          log(line);
          for (const note of vm.ssh.notes) log(`VM ${vm.name}: ${note}`);
        }
        said.set(vm.name, line);
      },
      log,
      onProgress: status.onProgress,
    });
    if (!store) return r.report;
    // Stateful: thresholds from the stored streaks, actions on hard transitions (docs/state.md).
    const s = await advanceWithStore(store, r, pool, signal, alerting);
    for (const n of s.notifications) log(`alert ${n.event} ${n.alert_key}: ${n.state}`);
    for (const t of s.transitions) log(`${t.vm}/${t.check}: ${t.from ?? 'new'} → ${t.to}${t.hard ? '' : ' (soft)'}: ${t.message}`);
    for (const a of s.actions) io.stderr.write(`clonebox: action ${redactText(describeAction(summarizeAction(a)))}\n`);
    return s.report;
  };
  try {
    let report: FleetReport;
    if (opts.waitMs !== undefined) {
      const result = await waitUntilHealthy({
        waitMs: opts.waitMs,
        intervalMs: opts.waitIntervalMs ?? 5000,
        failOn,
        round,
        signal,
        // On a terminal one line redrawn in place (a slow round's progress takes it while it runs); elsewhere
        // (CI logs) a plain line per round.
        progress: (line, final) => {
          if (final || !status.live) {
            status.hold(undefined);
            io.stderr.write(`clonebox: ${line}\n`);
          } else status.hold(`clonebox: ${line}`);
        },
      });
      report = result.report;
    } else {
      report = await round(signal);
    }
    status.close(); // the report never shares a line with the progress
    await emit(report, opts, io);
    // Deliver what this run (or an earlier one) left in the outbox, bounded by the providers' timeouts.
    if (store && alerting) await deliverAtEnd(store, alerting, io, opts.verbose);
    return { exitCode: exitCodeFor(report, failOn), report };
  } finally {
    await store?.close();
    await pool.close();
    if (backend) await (await backend.catch(() => undefined))?.close();
    await backends.close();
  }
}
