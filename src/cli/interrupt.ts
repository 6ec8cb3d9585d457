/** Ctrl-C and SIGTERM for a command: the first aborts the signal its work runs under, so it stops cleanly. */

export interface InterruptOptions {
  /** A second Ctrl-C exits at once with 130 instead of waiting for the clean stop (watch). */
  secondExits?: boolean;
}

export async function withInterrupts<T>(work: (signal: AbortSignal) => Promise<T>, options: InterruptOptions = {}): Promise<T> {
  const controller = new AbortController();
  let interrupts = 0;
  const stop = () => {
    if (++interrupts > 1 && options.secondExits) process.exit(130);
    controller.abort(new Error('interrupted'));
  };
  // Without secondExits the handler goes after the first signal: a second one then ends the process the default way.
  const listen = options.secondExits ? process.on.bind(process) : process.once.bind(process);
  listen('SIGINT', stop);
  listen('SIGTERM', stop);
  try {
    return await work(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
