/** `alerting:` of `.clonebox.yaml` (docs/alerting.md): providers, routes and their policy; part of schema.ts. */
import { z } from 'zod';
import { Duration, Port, PositiveDuration } from './schema-values.js';

const ProviderName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must start with a letter or digit and use only letters, digits, _ . -');
const HttpUrl = z.string().refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), {
  message: 'must be an http:// or https:// URL',
});
const providerCommon = {
  /** How routes and `health alert test --provider` name it; default: its type. */
  name: ProviderName.optional(),
  /** One delivery's deadline. */
  timeout: PositiveDuration.default(10_000),
};

export const AlertmanagerProvider = z.strictObject({
  ...providerCommon,
  type: z.literal('alertmanager'),
  /** Alertmanager's base URL (`http://alertmanager:9093`); alerts go to `/api/v2/alerts` under it. */
  url: HttpUrl,
  headers: z.record(z.string(), z.string()).default({}),
});
export const WebhookProvider = z.strictObject({
  ...providerCommon,
  type: z.literal('webhook'),
  url: HttpUrl,
  headers: z.record(z.string(), z.string()).default({}),
});
export const SlackProvider = z.strictObject({
  ...providerCommon,
  type: z.literal('slack'),
  /** The incoming-webhook URL (Slack, Mattermost, Rocket.Chat). */
  url: HttpUrl,
  channel: z.string().min(1).optional(),
  username: z.string().min(1).optional(),
});
export const EmailProvider = z.strictObject({
  ...providerCommon,
  type: z.literal('email'),
  host: z.string().min(1, 'must be the SMTP server host'),
  port: Port.default(587),
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
  tls: z.boolean().default(false),
  /** Refuse to send without STARTTLS (a server that does not offer it fails the delivery). */
  require_starttls: z.boolean().default(false),
  /** Accept a self-signed server certificate. */
  insecure: z.boolean().default(false),
  username: z.string().min(1).optional(),
  password: z.string().optional(),
  from: z.string().min(3, 'must be a sender address'),
  to: z.union([z.string().min(3), z.array(z.string().min(3)).min(1)]).transform((t) => (Array.isArray(t) ? t : [t])),
});
export const CommandProvider = z.strictObject({
  ...providerCommon,
  type: z.literal('command'),
  /** Run on this host with /bin/sh -c; the notification arrives as JSON on stdin. */
  command: z.string().min(1, 'must be a command'),
});

export type AlertmanagerProvider = z.infer<typeof AlertmanagerProvider>;
export type WebhookProvider = z.infer<typeof WebhookProvider>;
export type SlackProvider = z.infer<typeof SlackProvider>;
export type EmailProvider = z.infer<typeof EmailProvider>;
export type CommandProvider = z.infer<typeof CommandProvider>;

export const PROVIDER_TYPES = ['alertmanager', 'webhook', 'slack', 'email', 'command'] as const;
export const AlertProvider = z.discriminatedUnion('type', [AlertmanagerProvider, WebhookProvider, SlackProvider, EmailProvider, CommandProvider]);
export type AlertProvider = z.infer<typeof AlertProvider>;

const OneOrMany = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));

export const AlertRoute = z.strictObject({
  /** Every key given must match; no `match` matches everything. */
  match: z
    .strictObject({
      /** VM names or globs (`db-*`). */
      vm: OneOrMany.optional(),
      /** Check names or globs. */
      check: OneOrMany.optional(),
      /** The check has any of these tags (a VM-level alert carries the tags of the VM's checks). */
      tags: z.array(z.string().min(1)).min(1).optional(),
    })
    .default({}),
  providers: z.array(ProviderName).min(1, 'must name at least one provider'),
  /** Go on to the next routes after this one matched. */
  continue: z.boolean().default(false),
});
export type AlertRoute = z.infer<typeof AlertRoute>;

const Share = z.number().min(0, 'must be a percentage from 0 to 100').max(100, 'must be a percentage from 0 to 100');

export const AlertingSettings = z
  .strictObject({
    providers: z.array(AlertProvider).default([]),
    /** First match wins (unless `continue`); a notification no route matches goes to every provider. */
    routes: z.array(AlertRoute).default([]),
    /** Notify a still-firing alert again after this long; 0 never. */
    repeat_interval: Duration.default(4 * 3_600_000),
    /** One VM-level alert once a VM could not be evaluated for this long; its checks' alerts wait. */
    unreachable_after: Duration.default(5 * 60_000),
    flapping: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** % of state changes over the last 21 results from which a check is flapping. */
        high_threshold: Share.default(50),
        /** % below which it stops flapping. */
        low_threshold: Share.default(25),
      })
      .refine((f) => f.low_threshold <= f.high_threshold, { message: 'low_threshold must not be above high_threshold', path: ['low_threshold'] })
      .default({ enabled: true, high_threshold: 50, low_threshold: 25 }),
    /** Redelivery of a notification a provider did not take. */
    retry: z
      .strictObject({
        initial_backoff: PositiveDuration.default(5000),
        max_backoff: PositiveDuration.default(5 * 60_000),
        /** Give up on a notification this old. */
        give_up_after: PositiveDuration.default(24 * 3_600_000),
      })
      .default({ initial_backoff: 5000, max_backoff: 5 * 60_000, give_up_after: 24 * 3_600_000 }),
    /** A link in every notification; `{{vm}}` and `{{check}}` are filled in. */
    details_url: z.string().min(1).optional(),
    /** The `hypervisor` label; default: none. */
    hypervisor: z.string().min(1).optional(),
  })
  .superRefine((a, ctx) => {
    const names = new Map<string, number>();
    a.providers.forEach((p, i) => {
      const name = p.name ?? p.type;
      const first = names.get(name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['providers', i, 'name'],
          message: `duplicate provider name ${JSON.stringify(name)} (first at providers.${first}); give each provider of one type its own name`,
        });
      } else names.set(name, i);
    });
    a.routes.forEach((r, i) =>
      r.providers.forEach((name, j) => {
        if (!names.has(name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['routes', i, 'providers', j],
            message: `no provider named ${JSON.stringify(name)}; configured: ${[...names.keys()].join(', ') || 'none'}`,
          });
        }
      }),
    );
  });
export type AlertingSettings = z.infer<typeof AlertingSettings>;
