// What a GPU command prints while the driver compiles its programs (on a software adapter with an
// empty shader cache this takes minutes): "compiling N GPU programs… k/N", redrawn in place on a
// terminal; in a log or pipe a few plain lines (start, end, and each quarter once it takes 5 s).
// Goes to stderr so that stdout keeps only results. With --verbose, also one line per program: its
// compile time, kernel, key (tile and variant) and where it compiled (a helper device or the main one).

import type { CompileProgress } from '../gpu/warmup.js';

export interface CompileProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export function compileProgressPrinter(
  out: CompileProgressStream = process.stderr, now: () => number = () => performance.now(), options: { listing?: boolean } = {},
): CompileProgress {
  let started = 0;
  let quarter = 0;
  const tty = out.isTTY === true;
  return (done, total, compiled) => {
    const what = `${total} GPU program${total === 1 ? '' : 's'}`;
    if (done === 0) {
      started = now();
      quarter = 0;
      out.write(tty ? `compiling ${what}… 0/${total}` : `compiling ${what}…\n`);
      return;
    }
    const seconds = (now() - started) / 1000;
    if (options.listing && compiled) {
      const line = `  ${(compiled.ms / 1000).toFixed(2).padStart(6)} s  ${compiled.name} ${compiled.key}${compiled.where === 'main' ? '' : ` (${compiled.where})`}`;
      out.write(`${tty ? '\r\x1b[K' : ''}${line}\n`); // on a terminal the progress line is redrawn below
    }
    if (done >= total) {
      const note = seconds >= 10 ? ' (the driver caches them: later runs start faster)' : '';
      out.write(`${tty ? '\r\x1b[K' : ''}compiled ${what} in ${seconds.toFixed(1)} s${note}\n`);
      return;
    }
    if (tty) {
      out.write(`\r\x1b[Kcompiling ${what}… ${done}/${total}`);
    } else if (Math.floor((4 * done) / total) > quarter && seconds >= 5) {
      quarter = Math.floor((4 * done) / total);
      out.write(`compiling ${what}… ${done}/${total} (${seconds.toFixed(0)} s)\n`);
    }
  };
}
