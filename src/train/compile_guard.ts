// Ctrl-C while the GPU programs compile (minutes on a software adapter with an empty shader
// cache): the first is acknowledged at once and the run stops when the compile ends, before any
// training or saving; a second exits immediately with code 130.

export const COMPILE_STOP_NOTICE = 'stopping after the compile; press Ctrl-C again to exit now';

export interface CompileGuard {
  /** True once a Ctrl-C (or an abort of the signal) arrived during the compile. */
  readonly interrupted: boolean;
  /** The compile is over: a Ctrl-C from now on is the caller's to handle. */
  end(): void;
}

export function guardCompile(options: { signal?: AbortSignal; out?: NodeJS.WritableStream & { isTTY?: boolean }; exit?: (code: number) => void } = {}): CompileGuard {
  const out = options.out ?? process.stderr;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let interrupted = false;
  const acknowledge = () => {
    if (interrupted) return;
    interrupted = true;
    // On a terminal the compile progress is a line redrawn in place: start a fresh line.
    out.write(`${out.isTTY ? '\n' : ''}${COMPILE_STOP_NOTICE}\n`);
  };
  const onSigint = () => {
    if (interrupted) exit(130);
    else acknowledge();
  };
  process.on('SIGINT', onSigint);
  if (options.signal?.aborted) acknowledge();
  options.signal?.addEventListener('abort', acknowledge);
  return {
    get interrupted() { return interrupted; },
    end() {
      process.off('SIGINT', onSigint);
      options.signal?.removeEventListener('abort', acknowledge);
      // The user was told a second Ctrl-C exits now: that stays true while the run winds down after
      // the compile (without a listener, a Ctrl-C there would kill the process by the signal instead).
      if (interrupted) process.once('SIGINT', () => exit(130));
    },
  };
}
