import { Command } from '@oclif/core';

export default class HealthSchemaCommand extends Command {
  static override summary = 'Print the JSON Schema of .clonebox.yaml, for editors and validators.';
  static override description = [
    'The schema is generated from the same definition that validates the config, and describes what you write (durations such as 5s). ' +
      'Point the YAML language server at it with this comment in the config file to get completion, descriptions on hover and errors while editing:',
    '  # yaml-language-server: $schema=./clonebox.schema.json',
    'docs/clonebox.schema.json holds a copy; docs/config-reference.md is the same in prose.',
  ].join('\n\n');

  static override examples = ['<%= config.bin %> health schema > clonebox.schema.json'];

  async run(): Promise<void> {
    await this.parse(HealthSchemaCommand);
    // Loaded only when this command runs, so --help and other commands stay fast.
    const { configJsonSchemaText } = await import('../../config/json-schema.js');
    process.stdout.write(configJsonSchemaText());
  }
}
