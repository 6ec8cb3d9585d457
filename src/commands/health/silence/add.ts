import { Args, Command, Flags } from '@oclif/core';

export default class HealthSilenceAddCommand extends Command {
  static override summary = 'Silence alerts and actions for VMs (or one check) during maintenance; checks still run and are recorded.';
  static override description = `Stored in the history store, so "health watch" and "health check --store" on any host honour it.
A check still failing when the silence ends alerts then.`;

  static override examples = [
    `<%= config.bin %> health silence add 'web-*' --for 2h --reason "kernel upgrade"`,
    '<%= config.bin %> health silence add db-1 --check pg-ready --for 30m',
  ];

  static override args = { vm: Args.string({ description: 'VM name or glob', required: true }) };

  static override flags = {
    check: Flags.string({ description: 'only this check (default: every check of the VMs, and their VM-level alert)' }),
    for: Flags.string({ description: 'how long: 30m, 2h, 1d', required: true }),
    reason: Flags.string({ char: 'r', description: 'why (shown in silence list and in history)' }),
    json: Flags.boolean({ description: 'print the silence as JSON' }),
    store: Flags.string({ description: 'history store: default, a SQLite path, or postgres://…' }),
    config: Flags.string({ char: 'c', description: 'config file to read history.store from (default .clonebox.yaml when present)' }),
    verbose: Flags.boolean({ char: 'v', description: 'stack traces on errors' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(HealthSilenceAddCommand);
    const { parseDuration } = await import('../../../config/duration.js');
    const forMs = parseDuration(flags.for);
    if (forMs === undefined || forMs <= 0) this.error(`--for expects a duration such as 30m, 2h or 1d, got "${flags.for}"`, { exit: 3 });
    const { runSilenceAdd } = await import('../../../cli/alerting.js');
    process.exitCode = await runSilenceAdd(
      {
        vm: args.vm,
        ...(flags.check ? { check: flags.check } : {}),
        forMs,
        ...(flags.reason ? { reason: flags.reason } : {}),
        json: flags.json,
        ...(flags.store ? { store: flags.store } : {}),
        ...(flags.config ? { config: flags.config } : {}),
      },
      { stdout: process.stdout, stderr: process.stderr },
    );
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const { reportError } = await import('../../../cli/errors.js');
    reportError(err, this.argv);
  }
}
