/** How watch events read as text: one line per event for logs and pipes, and the --verbose lines on stderr. */
import { formatDuration } from '../../config/duration.js';
import { describeAction } from '../../engine/stateful.js';
import type { ActionEvent, AlertEvent, NoteEvent, RoundEvent, StatusEvent, StopEvent, TransitionEvent, VmEvent } from '../../engine/watch/events.js';
import { oneLine } from '../../outputs/table.js';
import { printable } from '../../util/printable.js';
import { redactText } from '../../util/redact.js';

/** `2026-11-27T21:00:00Z`: seconds are enough for a person. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The events that are changes of the fleet: one line each where no live table shows them. */
export type ChangeEvent = TransitionEvent | StatusEvent | ActionEvent | AlertEvent;

export function isChange(e: { type: string }): e is ChangeEvent {
  return e.type === 'transition' || e.type === 'status' || e.type === 'action' || e.type === 'alert';
}

/** The line of a transition, status or action event. */
export function eventLine(e: ChangeEvent): string {
  const at = isoSeconds(Date.parse(e.ts));
  switch (e.type) {
    case 'transition':
      return `${at} ${printable(e.vm)}/${e.check} ${e.from ?? '(new)'} → ${e.to}${e.hard ? '' : e.streak ? ` (soft: ${e.streak})` : ' (soft)'}: ${oneLine(e.message)}`;
    case 'status': {
      const note =
        e.to === 'UNKNOWN'
          ? `not evaluated${e.state === 'UNKNOWN' ? '' : `; state stays ${e.state}`}`
          : e.from === null
            ? `state kept from the store, since ${isoSeconds(Date.parse(e.since))}`
            : 'evaluated again; state unchanged';
      return `${at} ${printable(e.vm)}/${e.check} ${e.from ?? '(new)'} → ${e.to} (${note}): ${oneLine(e.message)}`;
    }
    case 'action':
      return `${at} action ${oneLine(describeAction(e))}`;
    case 'alert': {
      const n = e.notification;
      return `${at} alert ${n.event}${n.repeat ? ` (repeat ${n.repeat})` : ''} ${n.alert_key} ${n.state}: ${oneLine(n.message)}`;
    }
  }
}

/** What --verbose says for events that are not change lines (notes are said as they are). */
export function verboseLine(e: RoundEvent | VmEvent | StopEvent, ssh: { connectionsOpened: number }, startedAt: number): string {
  switch (e.type) {
    case 'round':
      return `round ${e.round} in ${formatDuration(e.duration_ms)}: fleet ${e.status}, ${e.vms.total} VMs, ${e.checks.total} checks, ${ssh.connectionsOpened} SSH connections opened so far`;
    case 'vm': {
      if (e.reachable) return `VM ${printable(e.vm)}: reachable again`;
      // Transport errors already name the VM; "guest not reached: …" already says what happened.
      const why = oneLine((e.reason ?? 'no reason given').replace(`VM ${e.vm}: `, ''));
      return `VM ${printable(e.vm)}: ${why.startsWith('guest not reached') ? why : `cannot be reached: ${why}`}`;
    }
    case 'stop':
      return `stopped (${e.reason === 'rounds' ? `${e.rounds} rounds done` : 'interrupted'}) after ${formatDuration(Date.parse(e.ts) - startedAt)}: fleet ${e.status}`;
  }
}

/** Notes on stderr as `clonebox: …`; debug notes only with --verbose. */
export function noteLine(e: NoteEvent, verbose: boolean): string | undefined {
  return e.level === 'info' || verbose ? `clonebox: ${redactText(e.message)}\n` : undefined;
}
