import { Args, Command, Flags } from '@oclif/core';

export default class HealthSilenceRemoveCommand extends Command {
  static override summary = 'End a silence now.';

  static override examples = ['<%= config.bin %> health silence remove 3f2a9c1b'];

  static override args = { id: Args.string({ description: 'the silence id (from silence list)', required: true }) };

  static override flags = {
    store: Flags.string({ description: 'history store: default, a SQLite path, or postgres://…' }),
    config: Flags.string({ char: 'c', description: 'config file to read history.store from (default .clonebox.yaml when present)' }),
    verbose: Flags.boolean({ char: 'v', description: 'stack traces on errors' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(HealthSilenceRemoveCommand);
    const { runSilenceRemove } = await import('../../../cli/alerting.js');
    process.exitCode = await runSilenceRemove(
      { id: args.id, ...(flags.store ? { store: flags.store } : {}), ...(flags.config ? { config: flags.config } : {}) },
      { stdout: process.stdout, stderr: process.stderr },
    );
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const { reportError } = await import('../../../cli/errors.js');
    reportError(err, this.argv);
  }
}
