import { Args, Command, Flags } from '@oclif/core';

export default class HealthWatchCommand extends Command {
  static override summary = 'Keep checking VMs: each check on its interval, with thresholds, actions and a live view.';
  static override description = `Runs every check of .clonebox.yaml on its own interval (--interval overrides them all), with
jitter, over SSH connections kept open for the whole watch. Results go through the threshold state machine
(docs/state.md): on_failure / on_recovery actions run once, on hard transitions. State is kept in the history
store (default $XDG_DATA_HOME/clonebox/health.db; --store, or --no-store for memory only).

On a terminal: a live table redrawn in place. Elsewhere: one line per state transition and action, or with
--json one JSON object per line (docs/watch.md). --metrics-port serves /metrics for Prometheus.

Ctrl-C stops cleanly; the exit code is the last known fleet status (Nagios: 0 healthy, 1 degraded,
2 unhealthy, 3 unknown).`;

  static override examples = [
    '<%= config.bin %> health watch --all',
    "<%= config.bin %> health watch 'web-*' --interval 10s",
    '<%= config.bin %> health watch --all --json --no-store | jq -c \'select(.type == "transition")\'',
    '<%= config.bin %> health watch --all --metrics-port 9464',
    '<%= config.bin %> health watch --all --rounds 1 --json   # one stateful round, for cron',
  ];

  static override strict = false;
  static override args = {
    vms: Args.string({ description: 'VM names or globs (e.g. "web-*"); several allowed', required: false }),
  };

  static override flags = {
    config: Flags.string({ char: 'c', description: 'config file', default: '.clonebox.yaml' }),
    all: Flags.boolean({ char: 'a', description: 'watch every libvirt domain (VMs that appear later included)' }),
    interval: Flags.string({ char: 'i', description: "time between runs of every check (e.g. 30s), instead of each check's own interval" }),
    probe: Flags.string({ char: 'p', description: 'watch only this check (repeatable)', multiple: true }),
    json: Flags.boolean({ description: 'one JSON object per line: transition, status, action, round, stop (docs/watch.md)' }),
    connect: Flags.string({ description: 'libvirt URI (default: libvirt.uri, $LIBVIRT_DEFAULT_URI, qemu:///system)' }),
    // 32: on a 2-core host with N=100–200 VMs, 16 and 32 were equally fast (the guests' sshd is the floor)
    // and 64+ let handshakes queue past the probes' 5 s deadline (bench/README.md).
    concurrency: Flags.integer({ description: 'VMs checked at once', default: 32, min: 1, max: 1000 }),
    'accept-new-host-keys': Flags.boolean({ description: 'record unknown SSH host keys on first contact (a changed key is still refused)' }),
    'libvirt-backend': Flags.option({ options: ['auto', 'native', 'virsh'] as const, default: 'auto' as const, description: 'how to talk to libvirt' })(),
    store: Flags.string({
      description: 'keep state and history here: a SQLite path or postgres://… (default: history.store, else $XDG_DATA_HOME/clonebox/health.db)',
    }),
    'no-store': Flags.boolean({ description: 'keep thresholds in memory only: nothing recorded, nothing read', exclusive: ['store'] }),
    'metrics-port': Flags.integer({ description: 'serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port, printed)', min: 0, max: 65535 }),
    'metrics-host': Flags.string({ description: 'address the metrics server binds to', default: '127.0.0.1' }),
    rounds: Flags.integer({ description: 'stop after this many full rounds (every check ran N times); for tests and cron', min: 1 }),
    seed: Flags.integer({ description: 'seed for the jitter, for reproducible schedules (tests)', hidden: true }),
    verbose: Flags.boolean({ char: 'v', description: 'say more: connections, discovery, rounds, stack traces' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(HealthWatchCommand);
    // Heavy modules load only when a watch really runs, so --help stays fast.
    const { runWatch } = await import('../../cli/watch.js');
    const { durationFlag } = await import('../../cli/flags.js');
    const { withInterrupts } = await import('../../cli/interrupt.js');
    const intervalMs = durationFlag('interval', flags.interval, '30s, 5m or 500ms', 100);
    const { exitCode } = await withInterrupts(
      (signal) =>
        runWatch(
          {
            vms: argv as string[],
            config: flags.config,
            all: flags.all,
            ...(flags.probe ? { probe: flags.probe } : {}),
            json: flags.json,
            ...(flags.connect ? { connect: flags.connect } : {}),
            concurrency: flags.concurrency,
            verbose: flags.verbose,
            acceptNewHostKeys: flags['accept-new-host-keys'],
            libvirtBackend: flags['libvirt-backend'],
            ...(intervalMs === undefined ? {} : { intervalMs }),
            ...(flags.store ? { store: flags.store } : {}),
            noStore: flags['no-store'],
            ...(flags['metrics-port'] === undefined ? {} : { metricsPort: flags['metrics-port'], metricsHost: flags['metrics-host'] }),
            ...(flags.rounds === undefined ? {} : { rounds: flags.rounds }),
            ...(flags.seed === undefined ? {} : { seed: flags.seed }),
          },
          { stdout: process.stdout, stderr: process.stderr },
          signal,
        ),
      { secondExits: true },
    );
    process.exitCode = exitCode;
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const { reportError } = await import('../../cli/errors.js');
    reportError(err, this.argv);
  }
}
