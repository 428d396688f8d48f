// Learning-rate and TopK-annealing schedules, as pure functions of the global step so that a resumed run computes
// exactly the values the uninterrupted one would have.

export interface LrSchedule {
  lr: number; // peak learning rate
  minLr: number; // floor reached at the last step
  warmup: number; // steps of linear warm-up
  steps: number; // total optimizer steps
}

/**
 * Linear warm-up from lr/warmup (step 0) to lr (step warmup−1), then cosine decay from lr to minLr at step steps−1.
 * (nanoGPT's schedule; warm-up never starts at exactly 0, which would waste the first step.)
 */
export function learningRate(s: LrSchedule, step: number): number {
  if (step < s.warmup) return (s.lr * (step + 1)) / s.warmup;
  const span = Math.max(1, s.steps - 1 - s.warmup);
  const t = Math.min(1, (step - s.warmup) / span);
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * t));
}

/**
 * TopK LM α (docs/spec.md §4.4): linear from 1 (dense) at step 0 to 0 (pure TopK) at step ratio·steps, then 0.
 * ratio 0 means TopK from the start.
 */
export function topkAlpha(ratio: number, steps: number, step: number): number {
  const end = ratio * steps;
  if (end <= 0) return 0;
  return Math.max(0, 1 - step / end);
}
