/** Run a real fleet round in-process against the lab: real libvirt (test driver), real sshd, real services. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { checkFleet } from '../../src/engine/fleet.js';
import { VirshBackend } from '../../src/inventory/virsh.js';
import type { CheckResult, FleetReport, VMHealthReport } from '../../src/report.js';
import { SshPool } from '../../src/transport/ssh-pool.js';
import type { Lab } from '../lab/lab.js';

export type CheckSpec = Record<string, unknown> & { name: string; type: string };

/** A config for the lab with the given checks (and optional extra top-level keys). */
export function labConfigYaml(lab: Lab, checks: CheckSpec[], extra: Record<string, unknown> = {}): string {
  return stringify({
    libvirt: { uri: lab.uri },
    ssh: { user: 'root', identity_file: lab.identityFile, known_hosts: lab.knownHostsFile, host_key_policy: 'strict', connect_timeout: '3s' },
    health_checks: checks,
    ...extra,
  });
}

export async function writeTempConfig(text: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clonebox-test-'));
  const file = path.join(dir, '.clonebox.yaml');
  await writeFile(file, text);
  return file;
}

export async function runLab(
  lab: Lab,
  vms: string[],
  checks: CheckSpec[],
  extra: Record<string, unknown> = {},
  pool = new SshPool(),
): Promise<FleetReport> {
  const config = parseConfig(labConfigYaml(lab, checks, extra), 'test.yaml');
  try {
    return await checkFleet({ config, selectors: vms, all: false, concurrency: 8, backend: async () => new VirshBackend(lab.uri), pool });
  } finally {
    await pool.close();
  }
}

export function vmReport(report: FleetReport, vm: string): VMHealthReport {
  const r = report.reports.find((x) => x.vm_name === vm);
  if (!r) throw new Error(`no report for ${vm}: ${report.reports.map((x) => x.vm_name).join(', ')}`);
  return r;
}

export function checkOf(report: FleetReport, vm: string, check: string): CheckResult {
  const c = vmReport(report, vm).checks.find((x) => x.name === check);
  if (!c) throw new Error(`no check ${check} on ${vm}`);
  return c;
}
