import { Args, Command, Flags } from '@oclif/core';

export default class HealthCheckCommand extends Command {
  static override summary = 'Check whether VMs are really serving: run every configured check once.';
  static override description = `Finds each VM in libvirt, resolves its address, runs the checks of .clonebox.yaml
(command, script, disk and memory in the guest over one pooled SSH connection; http and tcp from the
host, where "localhost" means the guest) and prints a report.

Exit codes (Nagios): 0 healthy, 1 degraded, 2 unhealthy, 3 unknown (VM not evaluable, bad config,
libvirt unreachable). A fleet exits with its worst VM: unhealthy > degraded > unknown > healthy.`;

  static override examples = [
    '<%= config.bin %> health check my-vm',
    "<%= config.bin %> health check 'web-*' db-1 --probe api-health",
    '<%= config.bin %> health check --all --json --concurrency 20',
    '<%= config.bin %> health check --all --connect qemu+ssh://root@hv1/system',
    '<%= config.bin %> health check --all -o prometheus --output-file /var/lib/node_exporter/clonebox.prom',
    '<%= config.bin %> health check web-1 web-2 --wait 5m --wait-interval 5s   # CI gate after provisioning',
  ];

  static override strict = false;
  static override args = {
    vms: Args.string({ description: 'VM names or globs (e.g. "web-*"); several allowed', required: false }),
  };

  static override flags = {
    config: Flags.string({ char: 'c', description: 'config file', default: '.clonebox.yaml' }),
    all: Flags.boolean({ char: 'a', description: 'check every libvirt domain' }),
    probe: Flags.string({ char: 'p', description: 'run only this check (repeatable)', multiple: true }),
    json: Flags.boolean({ description: 'print the report as JSON (docs/json-output.md); short for --output json' }),
    output: Flags.option({
      char: 'o',
      // Listed here, not imported, so --help stays light; a test keeps it equal to OUTPUT_NAMES.
      options: ['table', 'json', 'junit', 'prometheus', 'nagios', 'tap'] as const,
      multiple: true,
      description: 'report format, repeatable (docs/outputs.md)',
    })(),
    'output-file': Flags.string({
      multiple: true,
      description: 'write the last --output here instead of stdout, replaced atomically (repeatable: pairs with the last outputs)',
    }),
    connect: Flags.string({ description: 'libvirt URI (default: libvirt.uri, $LIBVIRT_DEFAULT_URI, qemu:///system)' }),
    // 32: on a 2-core host with N=100–200 VMs, 16 and 32 were equally fast (the guests' sshd is the floor)
    // and 64+ let handshakes queue past the probes' 5 s deadline (bench/README.md).
    concurrency: Flags.integer({ description: 'VMs checked at once', default: 32, min: 1, max: 1000 }),
    'accept-new-host-keys': Flags.boolean({ description: 'record unknown SSH host keys on first contact (a changed key is still refused)' }),
    'libvirt-backend': Flags.option({ options: ['auto', 'native', 'virsh'] as const, default: 'auto' as const, description: 'how to talk to libvirt' })(),
    wait: Flags.string({ description: 'CI gate: re-run until every VM is healthy or this much time passes (e.g. 5m); booting VMs count as "not yet"' }),
    'wait-interval': Flags.string({ description: 'pause between rounds under --wait', default: '5s' }),
    'fail-on': Flags.option({
      options: ['any', 'degraded', 'unhealthy'] as const,
      default: 'any' as const,
      description: 'what fails the gate: any (anything but healthy), degraded (degraded or worse), unhealthy (degraded passes)',
    })(),
    store: Flags.string({
      description: 'keep state and history here and report thresholded states: default ($XDG_DATA_HOME/clonebox/health.db), a SQLite path, or postgres://… (docs/state.md)',
    }),
    'no-store': Flags.boolean({ description: 'ignore history.store from the config: raw results, nothing recorded', exclusive: ['store'] }),
    verbose: Flags.boolean({ char: 'v', description: 'say more: transports, libvirt backend, stack traces' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(HealthCheckCommand);
    // Heavy modules load only when a check really runs, so --help and --version stay fast.
    const { runCheck } = await import('../../cli/check.js');
    const { durationFlag } = await import('../../cli/flags.js');
    const { withInterrupts } = await import('../../cli/interrupt.js');
    const waitMs = durationFlag('wait', flags.wait, '30s, 5m or 1h');
    const waitIntervalMs = durationFlag('wait-interval', flags['wait-interval'], '30s, 5m or 1h');
    process.exitCode = await withInterrupts(async (signal) => {
      const { exitCode } = await runCheck(
        {
          vms: argv as string[],
          config: flags.config,
          all: flags.all,
          ...(flags.probe ? { probe: flags.probe } : {}),
          json: flags.json,
          ...(flags.output ? { outputs: flags.output } : {}),
          ...(flags['output-file'] ? { outputFiles: flags['output-file'] } : {}),
          ...(flags.connect ? { connect: flags.connect } : {}),
          concurrency: flags.concurrency,
          verbose: flags.verbose,
          acceptNewHostKeys: flags['accept-new-host-keys'],
          libvirtBackend: flags['libvirt-backend'],
          ...(waitMs === undefined ? {} : { waitMs }),
          ...(waitIntervalMs === undefined ? {} : { waitIntervalMs }),
          failOn: flags['fail-on'],
          ...(flags.store ? { store: flags.store } : {}),
          noStore: flags['no-store'],
        },
        { stdout: process.stdout, stderr: process.stderr },
        signal,
      );
      return signal.aborted ? 130 : exitCode;
    });
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const { reportError } = await import('../../cli/errors.js');
    reportError(err, this.argv);
  }
}
