import { Command, Flags } from '@oclif/core';

export default class HealthSilenceListCommand extends Command {
  static override summary = 'List the silences in force (with --all, ended ones too).';

  static override examples = ['<%= config.bin %> health silence list', '<%= config.bin %> health silence list --all --json'];

  static override flags = {
    all: Flags.boolean({ description: 'ended silences too (until pruned with the history)' }),
    json: Flags.boolean({ description: 'print the silences as JSON' }),
    store: Flags.string({ description: 'history store: default, a SQLite path, or postgres://…' }),
    config: Flags.string({ char: 'c', description: 'config file to read history.store from (default .clonebox.yaml when present)' }),
    verbose: Flags.boolean({ char: 'v', description: 'stack traces on errors' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(HealthSilenceListCommand);
    const { runSilenceList } = await import('../../../cli/alerting.js');
    process.exitCode = await runSilenceList(
      { all: flags.all, json: flags.json, ...(flags.store ? { store: flags.store } : {}), ...(flags.config ? { config: flags.config } : {}) },
      { stdout: process.stdout, stderr: process.stderr },
    );
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const { reportError } = await import('../../../cli/errors.js');
    reportError(err, this.argv);
  }
}
