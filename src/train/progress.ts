// The training progress line: step, loss, tokens/s, ETA. On a terminal it redraws one line (\r); in a log or a pipe
// it prints a plain line every `every` steps so the log stays readable.

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(r).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export interface ProgressInfo {
  step: number; // steps done (1-based count)
  steps: number; // total
  loss: number;
  tokensPerSec: number;
  elapsed: number; // seconds since the start of this (possibly resumed) session
  lr: number;
  startStep?: number; // the step this session started at (a resumed run), for the ETA
}

export function progressLine(p: ProgressInfo, width = 24): string {
  const frac = Math.min(1, p.steps > 0 ? p.step / p.steps : 1);
  const filled = Math.round(frac * width);
  const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
  const pct = (frac * 100).toFixed(0).padStart(3);
  const done = p.step - (p.startStep ?? 0);
  const eta = done > 0 && p.elapsed > 0 ? (p.elapsed / done) * (p.steps - p.step) : NaN;
  const tps = p.tokensPerSec >= 1000 ? `${(p.tokensPerSec / 1000).toFixed(1)}k` : p.tokensPerSec.toFixed(0);
  return (
    `${bar} ${pct}% step ${p.step}/${p.steps}  loss ` +
    `${Number.isFinite(p.loss) ? p.loss.toFixed(4) : String(p.loss)}  ${tps} tok/s  lr ${p.lr.toExponential(2)}  ` +
    `ETA ${formatDuration(eta)}`
  );
}

export class Progress {
  private lastPrint = -Infinity;
  constructor(
    private readonly out: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean },
    private readonly every = 10,
  ) {}

  update(p: ProgressInfo): void {
    if (this.out.isTTY) {
      this.out.write(`\r${progressLine(p)}\x1b[K`);
    } else if (p.step - this.lastPrint >= this.every || p.step === p.steps) {
      this.out.write(`${progressLine(p)}\n`);
      this.lastPrint = p.step;
    }
  }

  /** Print a full line (e.g. a validation result) without garbling the redrawn progress line. */
  log(line: string): void {
    if (this.out.isTTY) this.out.write(`\r\x1b[K${line}\n`);
    else this.out.write(`${line}\n`);
  }

  done(): void {
    if (this.out.isTTY) this.out.write('\n');
  }
}
