// Ctrl-C while the GPU programs compile (minutes on a software adapter with an empty shader
// cache): the first is acknowledged at once and the run stops when the compile ends, before any
// training or saving; a second ends the process at once, by the signal itself (a shell reports
// status 130, 128 + SIGINT).

export const COMPILE_STOP_NOTICE = 'stopping after the compile; press Ctrl-C again to exit now';

export interface CompileGuard {
  /** True once a Ctrl-C (or an abort of the signal) arrived during the compile. */
  readonly interrupted: boolean;
  /** The compile is over: a Ctrl-C from now on is the caller's to handle. */
  end(): void;
}

/**
 * Ends the process by SIGINT with its default action, as a program without a handler would. Not
 * process.exit(130): that runs native destructors while lavapipe's thread is still compiling, and
 * Dawn/Mesa's teardown then crashes (SIGSEGV, seen about once in four tries here).
 */
export function dieOfSigint(): void {
  process.removeAllListeners('SIGINT'); // the last listener gone, Node restores the default action
  process.kill(process.pid, 'SIGINT');
}

export function guardCompile(options: { signal?: AbortSignal; out?: NodeJS.WritableStream & { isTTY?: boolean }; exit?: () => void } = {}): CompileGuard {
  const out = options.out ?? process.stderr;
  const exit = options.exit ?? dieOfSigint;
  let interrupted = false;
  const acknowledge = () => {
    if (interrupted) return;
    interrupted = true;
    // On a terminal the compile progress is a line redrawn in place: start a fresh line.
    out.write(`${out.isTTY ? '\n' : ''}${COMPILE_STOP_NOTICE}\n`);
  };
  const onSigint = () => {
    if (interrupted) exit();
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
      if (interrupted) process.once('SIGINT', () => exit());
    },
  };
}
