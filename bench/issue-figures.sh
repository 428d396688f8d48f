#!/usr/bin/env bash
# Every figure of CPU training in one run: train-step tokens/s of every trainable preset on 1 and 2 threads against
# PyTorch on the same threads (bench/train-step.ts), where one step's time goes on 1 and 2 threads
# (bench/step-breakdown.ts: the default model and tiny), our matmul against tfjs-backend-wasm at every shape of the
# default model's step (bench/matmul-shapes.ts), `npm start` timed from a fresh clone, and the targets checked
# against all of it
# (bench/targets.ts). Everything lands in bench/results/ with the machine, its load, the versions and the BLAS.
#
#   bash bench/issue-figures.sh            # the real run (about 8 minutes on 2 cores); wants a quiet machine
#   bash bench/issue-figures.sh --quick    # tiny sizes, to check the plumbing: bench/results/quick/ (git-ignored)
#
# Run it from a committed tree: the `npm start` step clones this repository at HEAD (uncommitted changes are not
# in the clone), runs `npm ci` there (not timed) and times `npm start` (asm build check + 400 training steps).
# Not a test: every figure depends on the machine and on what else runs on it (see the load lines).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [[ "${1:-}" == "--quick" ]]; then
  out=bench/results/quick
  train_step=(--preset tiny,monet-vd-small --steps 1 --warmup 1 --rounds 1 --batch-size 2 --seq-len 32)
  breakdown=(--batch-size 2 --seq-len 32 --steps 1)
  shapes=(--batch-size 2 --seq-len 32 --rounds 1)
  start_args=(-- --steps 5 --eval-every 5)
elif [[ $# -eq 0 ]]; then
  out=bench/results
  train_step=(--all --steps 3 --warmup 2 --rounds 3)
  breakdown=()
  shapes=()
  start_args=()
else
  echo "bench/issue-figures.sh: expected no argument or --quick, found '$*'" >&2
  exit 2
fi
mkdir -p "$out"
tsx=(node --import tsx)

# ---- the machine, before anything runs
{
  echo "# Machine of this run"
  echo
  echo '```'
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  dirty=$(git diff --quiet HEAD -- . ':!bench/results' || echo ' (with uncommitted changes)')
  echo "commit: $(git rev-parse HEAD)$dirty"
  echo "uptime at start: $(uptime)"
  echo "/proc/stat cpu at start (user nice system idle iowait irq softirq steal, in 1/100 s): $(head -1 /proc/stat)"
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|L1d|L2|L3)' || true
  avx512=$(grep -q avx512f /proc/cpuinfo && echo yes || echo no)
  echo "AVX-512: $avx512, FMA: $(grep -qw fma /proc/cpuinfo && echo yes || echo no)"
  echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "node $(node --version), npm $(npm --version)"
  blas=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/ {print $2}')
  echo "libblas.so.3 alternative: ${blas:-none}"
  echo '```'
  echo
  echo "PyTorch as bench/lib/torch_env.py reports it (the first Python with torch:"
  echo "\$MONET_PYTHON, python3, /usr/bin/python3):"
  echo
  echo '```'
  for py in ${MONET_PYTHON:-python3 /usr/bin/python3}; do
    if "$py" -c 'import torch' 2>/dev/null; then
      echo "$py: $("$py" --version 2>&1)"
      "$py" bench/lib/torch_env.py
      break
    fi
  done
  echo '```'
} >"$out/machine.md"
cat "$out/machine.md"

step() { echo; echo "=== $1 (load: $(cut -d' ' -f1-3 /proc/loadavg))"; }

step "asm build"
npm run --silent build:asm

step "train step, every trainable preset, 1 and 2 threads, against PyTorch"
"${tsx[@]}" bench/train-step.ts "${train_step[@]}" --threads 1,2 --torch-own-threads N,1 --out "$out/train-step"

for preset in monet-vd-small tiny; do
  for t in 1 2; do
    step "step breakdown, $preset, $t thread(s)"
    "${tsx[@]}" bench/step-breakdown.ts "${breakdown[@]}" --preset "$preset" --threads "$t" \
      --out "$out/step-breakdown-${preset}-${t}t.md" >/dev/null
  done
done

step "matmul at every shape of the default model's step, against tfjs-backend-wasm"
"${tsx[@]}" bench/matmul-shapes.ts "${shapes[@]}" --out "$out/matmul-shapes-monet-vd-small.md" >/dev/null

step "npm start from a fresh clone"
clone=$(mktemp -d /tmp/monet-npm-start-XXXXXX)
trap 'rm -rf "$clone"' EXIT
git clone -q "$root" "$clone/monet-ts"
git -C "$clone/monet-ts" checkout -q "$(git rev-parse HEAD)"
(cd "$clone/monet-ts" && npm ci --no-audit --no-fund >"$clone/npm-ci.log" 2>&1) || {
  tail -20 "$clone/npm-ci.log" >&2
  exit 1
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
(cd "$clone/monet-ts" && /usr/bin/time -f '%e %U %S' -o "$clone/time.txt" npm start "${start_args[@]}") \
  >"$clone/start.log" 2>&1 || {
  tail -20 "$clone/start.log" >&2
  exit 1
}
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
read -r wall user sys <"$clone/time.txt"
COMMAND="git clone && npm ci && npm start ${start_args[*]}" COMMIT=$(git rev-parse HEAD) WALL=$wall USER_S=$user \
  SYS_S=$sys LOAD_BEFORE=$load_before LOAD_AFTER=$load_after LOG="$clone/start.log" node -e '
const e = process.env;
const log = require("fs").readFileSync(e.LOG, "utf8").split("\n");
const json = {
  command: e.COMMAND, commit: e.COMMIT,
  wallSeconds: Number(e.WALL), userSeconds: Number(e.USER_S), systemSeconds: Number(e.SYS_S),
  loadBefore: e.LOAD_BEFORE, loadAfter: e.LOAD_AFTER,
  backend: log.find((l) => /^backend:/.test(l)) ?? null,
  verdict: log.filter((l) => /target ≤ 0\.75/.test(l)).pop() ?? null,
};
process.stdout.write(JSON.stringify(json, null, 2) + "\n");' >"$out/npm-start.json"
{
  echo "git clone && npm ci && time npm start ${start_args[*]}   # commit $(git rev-parse --short HEAD)"
  echo "load average before: $load_before, after: $load_after"
  echo "wall ${wall} s, user ${user} s, system ${sys} s (/usr/bin/time; includes the asm build check of prestart)"
  echo
  echo '```'
  cat "$clone/start.log"
  echo '```'
} >"$out/npm-start.md"
tail -3 "$clone/start.log"

step "targets"
"${tsx[@]}" bench/targets.ts --dir "$out"
{
  echo "uptime at end: $(uptime)"
  echo "/proc/stat cpu at end: $(head -1 /proc/stat)"
} >>"$out/machine.md"
