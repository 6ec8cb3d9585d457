import { Args, Command, Flags } from '@oclif/core';

export default class HealthHistoryCommand extends Command {
  static override summary = "Show a VM's recorded health: uptime, failures, durations, transitions and a timeline per check.";
  static override description = `Reads the history store that "health watch" and "health check --store" write to
($XDG_DATA_HOME/clonebox/health.db unless --store or the config's history.store say otherwise).`;

  static override examples = [
    '<%= config.bin %> health history web-1',
    '<%= config.bin %> health history web-1 --last 7d --probe api-health',
    '<%= config.bin %> health history db-1 --last 90m --json',
  ];

  static override args = {
    vm: Args.string({ description: 'VM name', required: true }),
  };

  static override flags = {
    last: Flags.string({ char: 'l', description: 'the window: 90m, 24h, 7d', default: '24h' }),
    probe: Flags.string({ char: 'p', description: 'only this check (repeatable)', multiple: true }),
    json: Flags.boolean({ description: 'print the summary as JSON' }),
    store: Flags.string({ description: 'history store: default, a SQLite path, or postgres://…' }),
    config: Flags.string({ char: 'c', description: 'config file to read history.store from (default .clonebox.yaml when present)' }),
    utc: Flags.boolean({ description: 'show times in UTC' }),
    verbose: Flags.boolean({ char: 'v', description: 'stack traces on errors' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(HealthHistoryCommand);
    const { durationFlag } = await import('../../cli/flags.js');
    const lastMs = durationFlag('last', flags.last, '90m, 24h or 7d')!;
    const { runHistory } = await import('../../cli/history.js');
    process.exitCode = await runHistory(
      {
        vm: args.vm,
        lastMs,
        ...(flags.probe ? { probe: flags.probe } : {}),
        json: flags.json,
        ...(flags.store ? { store: flags.store } : {}),
        ...(flags.config ? { config: flags.config } : {}),
        utc: flags.utc,
      },
      { stdout: process.stdout, stderr: process.stderr },
    );
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const { reportError } = await import('../../cli/errors.js');
    reportError(err, this.argv);
  }
}
