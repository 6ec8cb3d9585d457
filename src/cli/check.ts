/** `clonebox health check`: the library call behind the thin oclif command. */
import { loadConfig } from '../config/load.js';
import { libvirtUri } from '../config/resolve.js';
import { checkFleet } from '../engine/fleet.js';
import { openBackend, type BackendChoice } from '../inventory/open.js';
import type { LibvirtBackend } from '../inventory/types.js';
import { OUTPUTS, wantColor } from '../outputs/index.js';
import { EXIT_CODES, type FleetReport } from '../report.js';
import { SshPool } from '../transport/ssh-pool.js';

export interface CheckCommandOptions {
  vms: string[];
  config: string;
  all: boolean;
  probe?: string[];
  json: boolean;
  connect?: string;
  concurrency: number;
  verbose: boolean;
  acceptNewHostKeys: boolean;
  libvirtBackend: BackendChoice;
}

export interface CommandIO {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown };
}

export async function runCheck(opts: CheckCommandOptions, io: CommandIO, signal: AbortSignal): Promise<{ exitCode: number; report: FleetReport }> {
  const config = await loadConfig(opts.config);
  const uri = libvirtUri(config, opts.connect);
  const log = (msg: string) => (opts.verbose ? io.stderr.write(`clonebox: ${msg}\n`) : undefined);
  let backend: Promise<LibvirtBackend> | undefined;
  const pool = new SshPool({ log });
  try {
    const report = await checkFleet({
      config,
      selectors: opts.vms,
      all: opts.all,
      ...(opts.probe ? { probes: opts.probe } : {}),
      concurrency: opts.concurrency,
      backend: () => (backend ??= openBackend(uri, opts.libvirtBackend, log)),
      pool,
      signal,
      acceptNewHostKeys: opts.acceptNewHostKeys,
    });
    const format = opts.json ? OUTPUTS.json! : OUTPUTS.table!;
    io.stdout.write(format.render(report, { color: wantColor(io.stdout), verbose: opts.verbose }));
    return { exitCode: EXIT_CODES[report.summary.overall_status], report };
  } finally {
    await pool.close();
    if (backend) await (await backend.catch(() => undefined))?.close();
  }
}
