import { Command, Flags } from '@oclif/core';

export default class HealthAlertTestCommand extends Command {
  static override summary = 'Send a test notification through each configured alerting provider and say, per provider, whether it was delivered.';
  static override description = 'Exit 0 when every chosen provider took it, 2 when one did not. Providers are configured under alerting.providers (docs/alerting.md).';

  static override examples = ['<%= config.bin %> health alert test', '<%= config.bin %> health alert test --provider pager --provider chat'];

  static override flags = {
    config: Flags.string({ char: 'c', description: 'config file', default: '.clonebox.yaml' }),
    provider: Flags.string({ char: 'p', description: 'only this provider (by name; repeatable)', multiple: true }),
    json: Flags.boolean({ description: 'print the results as JSON' }),
    verbose: Flags.boolean({ char: 'v', description: 'stack traces on errors' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(HealthAlertTestCommand);
    const { runAlertTest } = await import('../../../cli/alerting.js');
    process.exitCode = await runAlertTest({ config: flags.config, ...(flags.provider ? { provider: flags.provider } : {}), json: flags.json }, { stdout: process.stdout, stderr: process.stderr });
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const { reportError } = await import('../../../cli/errors.js');
    reportError(err, this.argv);
  }
}
