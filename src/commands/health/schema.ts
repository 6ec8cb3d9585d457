import { Command, Flags } from '@oclif/core';

export default class HealthSchemaCommand extends Command {
  static override summary = 'Print the JSON Schema of .clonebox.yaml, for editors and validators.';
  static override description = [
    'The schema is generated from the same definition that validates the config, and describes what you write (durations such as 5s). ' +
      'Point the YAML language server at it with this comment in the config file to get completion, descriptions on hover and errors while editing:',
    '  # yaml-language-server: $schema=./clonebox.schema.json',
    'The probe types of the plugins the config file names under plugins: are in it too. ' +
      'docs/clonebox.schema.json holds a copy without plugins; docs/config-reference.md is the same in prose.',
  ].join('\n\n');

  static override examples = ['<%= config.bin %> health schema > clonebox.schema.json', '<%= config.bin %> health schema --config /etc/clonebox/health.yaml'];

  static override flags = {
    config: Flags.string({ char: 'c', description: 'config file whose plugins add probe types to the schema (default .clonebox.yaml, if it exists)' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(HealthSchemaCommand);
    // Loaded only when this command runs, so --help and other commands stay fast.
    const { configJsonSchemaText } = await import('../../config/json-schema.js');
    const { DEFAULT_CONFIG_FILE, loadConfigPlugins } = await import('../../config/load.js');
    const plugins = await loadConfigPlugins(flags.config ?? DEFAULT_CONFIG_FILE, flags.config !== undefined);
    process.stdout.write(configJsonSchemaText(plugins));
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const { reportError } = await import('../../cli/errors.js');
    reportError(err, this.argv);
  }
}
