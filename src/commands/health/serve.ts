import { Command, Flags } from '@oclif/core';

export default class HealthServeCommand extends Command {
  static override summary = 'Serve a status page, a JSON API, SVG badges and /metrics from the history store.';
  static override description = `Reads the history store that "health watch" writes (SQLite or PostgreSQL; several watches writing into one
PostgreSQL appear together) and serves, read-only: the fleet at /, one VM at /vms/VM, one check with uptime bars
at /vms/VM/checks/CHECK, the JSON API under /api/v1 (docs/api.md), badges at /badge/VM.svg and
/badge/VM/CHECK.svg, and /metrics. Pages update themselves while a watch records results.

Binds 127.0.0.1:8080 by default. Any other address needs --auth (a secret read from env:NAME or file:PATH,
never given on the command line) or an explicit --no-auth.`;

  static override examples = [
    '<%= config.bin %> health serve',
    '<%= config.bin %> health serve --listen 127.0.0.1:9000 --store postgres://clonebox@db/health',
    'CLONEBOX_SERVE_TOKEN=$(openssl rand -hex 16) <%= config.bin %> health serve --listen 0.0.0.0:8080 --auth env:CLONEBOX_SERVE_TOKEN',
    '<%= config.bin %> health serve --listen :8080 --auth file:/etc/clonebox/serve.htpass --auth-type basic',
  ];

  static override flags = {
    listen: Flags.string({ char: 'l', description: 'address and port to serve on: HOST:PORT, [IPv6]:PORT or :PORT', default: '127.0.0.1:8080' }),
    store: Flags.string({ description: 'history store: a SQLite path or postgres://… (default: history.store in the config, else the default file)' }),
    config: Flags.string({ char: 'c', description: 'config for history.store, check criticality and tags (default .clonebox.yaml when present)' }),
    auth: Flags.string({ description: 'require credentials, read from env:NAME or file:PATH (a token; user:password with --auth-type basic)' }),
    'auth-type': Flags.option({ options: ['bearer', 'basic'] as const, default: 'bearer' as const, description: 'what --auth holds' })(),
    'no-auth': Flags.boolean({ description: 'serve a non-loopback address without credentials (anyone who reaches it can read it)', exclusive: ['auth'] }),
    'rate-limit': Flags.integer({ description: 'requests per minute per client address', default: 600, min: 1 }),
    poll: Flags.string({ description: 'how often to look for new results in the store (e.g. 1s)', default: '1s' }),
    verbose: Flags.boolean({ char: 'v', description: 'stack traces on errors' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(HealthServeCommand);
    const { parseDuration } = await import('../../config/duration.js');
    const pollMs = parseDuration(flags.poll);
    if (pollMs === undefined || pollMs < 100) this.error(`--poll expects a duration of at least 100ms, got "${flags.poll}"`, { exit: 3 });
    const { runServe } = await import('../../serve/run.js');
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      await runServe(
        {
          listen: flags.listen,
          ...(flags.store ? { store: flags.store } : {}),
          ...(flags.config ? { config: flags.config } : {}),
          ...(flags.auth ? { auth: flags.auth } : {}),
          authType: flags['auth-type'],
          noAuth: flags['no-auth'],
          pollMs,
          rateLimitPerMinute: flags['rate-limit'],
          log: (msg) => process.stderr.write(`clonebox: ${msg}\n`),
        },
        controller.signal,
      );
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const { reportError } = await import('../../cli/errors.js');
    reportError(err, this.argv);
  }
}
