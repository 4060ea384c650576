// Training progress for one epoch. On a terminal: one line redrawn in place with \r,
//   epoch 3/10 [#######.....] 120/125 batches  310.2 img/s  loss 0.1234  acc 96.1%  ETA 0:12
// Elsewhere (logs, CI, pipes): plain lines every N batches and/or every ~10 s, and one at the end
// of the epoch. Output stream and clock are injectable for tests.

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  /** Terminal width; lines are cut to fit so that \r redraws stay on one line. */
  columns?: number;
}

export interface ProgressOptions {
  /** 1-based epoch number and the total. */
  epoch: number;
  epochs: number;
  /** Batches in this epoch. */
  batches: number;
  /** Default process.stdout. */
  out?: ProgressStream;
  /** Redraw in place (default: out.isTTY). */
  tty?: boolean;
  /** Milliseconds, default performance.now. */
  now?: () => number;
  /** Not a terminal: a line every this many batches (default 0: off). */
  everyBatches?: number;
  /** Not a terminal: a line when this many seconds have passed since the last one (default 10). */
  everySeconds?: number;
  /** Terminal: redraw at most this often, in milliseconds (default 100). */
  minRedrawMs?: number;
  /** Characters in the bar (default 20). */
  barWidth?: number;
}

export interface ProgressUpdate {
  /** Batches done in this epoch (1-based count). */
  batch: number;
  imagesPerSec?: number;
  /** Mean loss over the epoch so far. */
  loss?: number;
  /** Fraction correct over the epoch so far, in [0, 1]. */
  accuracy?: number;
}

/** h:mm:ss or m:ss, rounded to whole seconds; "--:--" when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export class ProgressReporter {
  private readonly out: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly started: number;
  private lastWrite: number;
  private last: ProgressUpdate | undefined;
  private drawn = false;
  private finished = false;

  constructor(private readonly o: ProgressOptions) {
    this.out = o.out ?? process.stdout;
    this.tty = o.tty ?? !!this.out.isTTY;
    this.now = o.now ?? (() => performance.now());
    this.started = this.now();
    this.lastWrite = this.started;
  }

  update(u: ProgressUpdate): void {
    if (this.finished) return;
    this.last = u;
    const t = this.now();
    if (this.tty) {
      if (!this.drawn || t - this.lastWrite >= (this.o.minRedrawMs ?? 100) || u.batch >= this.o.batches) this.redraw(t);
      return;
    }
    if (u.batch >= this.o.batches) return; // finish() prints the epoch's line
    const every = this.o.everyBatches ?? 0;
    if ((every > 0 && u.batch % every === 0) || t - this.lastWrite >= 1000 * (this.o.everySeconds ?? 10)) {
      this.out.write(`${this.line(t, false)}\n`);
      this.lastWrite = t;
    }
  }

  /** Ends the epoch's output: the final state with the epoch's duration, and a newline. Idempotent. */
  finish(): void {
    if (this.finished) return;
    const t = this.now();
    const text = this.line(t, true);
    this.out.write(this.tty ? `\r${this.fit(text)}\x1b[K\n` : `${text}\n`);
    this.finished = true;
  }

  /** Prints a message without breaking the bar (on a terminal the bar is redrawn under it). */
  log(message: string): void {
    if (!this.tty) {
      this.out.write(`${message}\n`);
      return;
    }
    this.out.write(`\r\x1b[K${message}\n`);
    if (this.drawn && !this.finished) this.redraw(this.now());
  }

  private redraw(t: number): void {
    this.out.write(`\r${this.fit(this.line(t, false))}\x1b[K`);
    this.drawn = true;
    this.lastWrite = t;
  }

  private fit(text: string): string {
    const columns = this.out.columns;
    return columns && columns > 1 && text.length > columns - 1 ? text.slice(0, columns - 1) : text;
  }

  private line(t: number, done: boolean): string {
    const { epoch, epochs, batches } = this.o;
    const batch = Math.min(this.last?.batch ?? 0, batches);
    const elapsed = (t - this.started) / 1000;
    const width = this.o.barWidth ?? 20;
    const filled = batches > 0 ? Math.floor((width * batch) / batches) : width; // full only when done
    const parts = [`epoch ${epoch}/${epochs}`];
    if (this.tty) parts.push(`[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`);
    parts.push(`${batch}/${batches} batches`);
    const joined = [parts.join(' ')];
    const u = this.last;
    if (u?.imagesPerSec !== undefined && Number.isFinite(u.imagesPerSec)) joined.push(`${u.imagesPerSec.toFixed(1)} img/s`);
    if (u?.loss !== undefined) joined.push(`loss ${u.loss.toFixed(4)}`);
    if (u?.accuracy !== undefined) joined.push(`acc ${(100 * u.accuracy).toFixed(1)}%`);
    if (done) {
      joined.push(`${batch < batches ? 'stopped after' : 'done in'} ${formatDuration(elapsed)}`);
    } else {
      const eta = batch > 0 ? (elapsed / batch) * (batches - batch) : NaN;
      joined.push(`ETA ${formatDuration(eta)}`);
    }
    return joined.join('  ');
  }
}
