#!/usr/bin/env bash
# The GPU harness: on an x86-64 Linux machine with an NVIDIA GPU (no internet, no node needed), from
# the repo root with the folder bench/gpu/pack.sh made (.gpu/) beside it, runs on Dawn's Vulkan
# backend `bench train` (densenet-bc-100-12, batch 64, every memory strategy, and tfjs-webgpu) and
# `bench inference` (densenet121, batch 1 and 32), the same networks in PyTorch on the same card
# (torch_bench.py), our densenet121 logits against PyTorch's on the same random weights
# (compare_logits.py), and prints one table (report.py). Steps in order, each under a time limit
# cut to what is left of the whole run's (default 540 s: 9 minutes, inside a 10-minute slot):
#   unpack 30 s · info 60 s · torch (eager, oracle files) 150 s · logits 120 s · train 270 s ·
#   inference 150 s · profile 120 s · tune 90 s · tuned 60 s · norobust 60 s ·
#   compile (torch.compile, whatever time is left) · report
# The profile step runs `bench profile` (per-kernel GPU times, bench/profile.ts) on a BC-100-12
# batch-64 training step and a DenseNet-121 batch-32 inference: where the time goes on that card.
# tune tunes BC-100-12 batch 64 (fused) on that card (60 s budget) into this run's own cache
# ($XDG_CACHE_HOME is set to a folder of the run's, emptied first, so the rows before it are
# untuned), and tuned times ours-fused again with the picks; norobust times ours-fused untuned with
# DENSENET_WGSL_DISABLE_ROBUSTNESS=1 (no bounds clamps): the two rows under the table say what each is worth.
# A failed or timed-out step is logged and the run goes on; the table shows "—" for what is missing.
# Sizes (stated): bench train 20 timed steps after one warm-up per strategy (budget 45 s per
# configuration); bench inference 10 reps after 2 warm-ups; PyTorch 30 training steps after 5
# warm-ups, 20 inference reps after 3; the oracle 4 images 224×224.
# Output: $OUT if set (the device tool returns it), else ./gpu-results/UTC-TIME/: run.log, table.md,
# results.json, train.json, inference.json, torch_eager.json, torch_compile.json, logits.json,
# profile_train.json, profile_inference.json, trace_train.json (the profiled training step's launches as a
# Chrome trace: ui.perfetto.dev), train_tuned.json, train_norobust.json (tune's picks: run.log).
# Environment: GPU_PACK (default .gpu), GPU_TOOLS (unpack here; default /tmp/densenet-wgsl-gpu),
# GPU_STEPS (comma list of the steps above), GPU_DEADLINE_S (540), GPU_TRAIN_MODEL and GPU_TRAIN_BATCH
# (ours' training network for train, profile, tune, tuned, norobust: densenet-bc-100-12, 64; the
# PyTorch anchor stays BC-100-12), GPU_PROFILE_INFERENCE (the inference profile's --model/--batch
# flags; the tests use tiny models for all of these), GPU_TUNE_BUDGET (tune's --budget, 60 s), GPU_ALLOW_SOFTWARE=1 (accept a
# software adapter: for trying the harness without a GPU), GPU_NODE (use this node, not the packed one),
# DENSENET_WGSL_BACKEND (default vulkan).
# Through this workplace's device tool: run(command="bash bench/gpu/run.sh", carry=[".gpu"], timeout_s=600)
# from the checkout holding .gpu/ (13 files come back from $OUT: the ones listed above).
set -uo pipefail

[ -f bench/gpu/run.sh ] || { echo "run.sh: run me from the repository root (bash bench/gpu/run.sh)" >&2; exit 2; }
REPO=$(pwd)
PACK=${GPU_PACK:-.gpu}
TOOLS=${GPU_TOOLS:-/tmp/densenet-wgsl-gpu}
# Each run without $OUT gets its own folder: an earlier run's files are neither replaced nor mixed in.
RESULTS=${OUT:-$REPO/gpu-results/$(date -u +%Y%m%d-%H%M%S)}
WORK=$TOOLS/work
STEPS=${GPU_STEPS:-unpack,info,torch,logits,train,inference,profile,tune,tuned,norobust,compile,report}
DEADLINE=$((SECONDS + ${GPU_DEADLINE_S:-540}))
TRAIN_MODEL=${GPU_TRAIN_MODEL:-densenet-bc-100-12}
TRAIN_BATCH=${GPU_TRAIN_BATCH:-64}
export DENSENET_WGSL_BACKEND=${DENSENET_WGSL_BACKEND:-vulkan}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
# The tuning cache of this run alone: nothing tuned earlier on this machine reaches the untuned rows.
export XDG_CACHE_HOME=$WORK/cache
rm -rf "$XDG_CACHE_HOME"
mkdir -p "$RESULTS" "$WORK" "$TOOLS/bin"
exec > >(tee -a "$RESULTS/run.log") 2>&1

NODE=${GPU_NODE:-$TOOLS/bin/node}
APP=$TOOLS/app
FAILED=()
wants() { [[ ",$STEPS," == *",$1,"* ]]; }

# step NAME CAP_S COMMAND...: runs COMMAND under min(CAP_S, time left - 20 s), logs its time and status.
step() {
  local name=$1 cap=$2 left limit rc t0=$SECONDS
  shift 2
  left=$((DEADLINE - SECONDS - 20))
  limit=$((cap < left ? cap : left))
  if [ "$limit" -lt 5 ]; then echo "== $name: skipped (no time left in the run's ${GPU_DEADLINE_S:-540} s)"; FAILED+=("$name (no time)"); return 1; fi
  echo "== $name (limit $limit s): $*"
  if declare -F "$1" >/dev/null; then "$@"; else timeout --kill-after=10 "$limit" "$@"; fi # functions time their own commands
  rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s$([ $rc = 124 ] && echo ' (timed out)')"
  [ $rc = 0 ] || FAILED+=("$name (exit $rc)")
  return $rc
}

unxz_to() { # FILE.xz DEST: xz where installed, else Python's lzma
  if command -v xz >/dev/null; then xz -dc "$1" > "$2"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}

unpack() {
  [ -f "$PACK/app.tar.xz" ] || { echo "run.sh: $PACK/app.tar.xz is missing: run bash bench/gpu/pack.sh on a machine with node and the repo's node_modules, and bring $PACK here"; return 1; }
  if [ -z "${GPU_NODE:-}" ]; then unxz_to "$PACK/node.xz" "$NODE" && chmod +x "$NODE" || return 1; fi
  rm -rf "$APP" && unxz_to "$PACK/app.tar.xz" "$TOOLS/app.tar" && tar -xf "$TOOLS/app.tar" -C "$TOOLS" && rm "$TOOLS/app.tar" || return 1
  echo "node $("$NODE" --version) at $NODE; app at $APP ($(cat "$PACK/MANIFEST.txt" 2>/dev/null | head -1))"
  # The Vulkan loader: the image may lack it (device/README.md); as root unpack the packed .debs into /,
  # as that README's recipe does, else into a private root put on LD_LIBRARY_PATH.
  # Not grep -q: it exits at the first match, ldconfig then dies of SIGPIPE, and pipefail turns that into 'absent' (the gpu_harness test's ~1-in-7 flake).
  if ldconfig -p 2>/dev/null | grep 'libvulkan.so.1 ' >/dev/null; then
    echo "Vulkan loader: present ($(ldconfig -p | grep -m1 'libvulkan.so.1 ' | sed 's/.*=> //'))"
  elif [ "$(id -u)" = 0 ]; then
    for f in "$PACK"/debs/*.deb; do dpkg -x "$f" / || return 1; done
    ldconfig
    echo "Vulkan loader: unpacked $(ls "$PACK"/debs/*.deb | wc -l) .deb files into / (ldconfig run)"
  else
    for f in "$PACK"/debs/*.deb; do dpkg -x "$f" "$TOOLS/sysroot" || return 1; done
    export LD_LIBRARY_PATH=$TOOLS/sysroot/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    echo "Vulkan loader: unpacked into $TOOLS/sysroot (not root), on LD_LIBRARY_PATH"
  fi
}

# The NVIDIA driver's Vulkan manifest may sit outside the loader's search path (device/README.md).
find_icd() {
  local d
  for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
    ls "$d"/nvidia*.json >/dev/null 2>&1 && { echo "Vulkan driver manifest: $(ls "$d"/nvidia*.json | head -1)"; return; }
  done
  if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json VK_ICD_FILENAMES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] && export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    echo "Vulkan driver manifest: VK_DRIVER_FILES=$VK_DRIVER_FILES"
  else
    echo "Vulkan driver manifest: no nvidia*.json found; Dawn gets whatever the loader finds"
  fi
}

info() {
  timeout 60 "$NODE" "$APP/dist/cli.js" info | tee "$WORK/info.txt" || return 1
  local adapter
  adapter=$(grep -m1 '^adapter:' "$WORK/info.txt")
  if [[ "$adapter" == *'[software]'* || "$adapter" != *[Nn][Vv][Ii][Dd][Ii][Aa]* ]] && [ "${GPU_ALLOW_SOFTWARE:-0}" != 1 ]; then
    echo "run.sh: Dawn did not pick the NVIDIA GPU ($adapter); check nvidia-smi, the Vulkan loader and VK_DRIVER_FILES"
    return 1
  fi
}

T=bench/gpu
echo "densenet-wgsl GPU harness, $(date -u +%Y-%m-%dT%H:%M:%SZ); results in $RESULTS; steps $STEPS"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
ok=1
if wants unpack; then step unpack 30 unpack || ok=0; fi
if [ $ok = 1 ]; then find_icd; fi
if [ $ok = 1 ] && wants info; then step info 60 info || ok=0; fi
[ $ok = 1 ] || echo "run.sh: without a working node and adapter only the PyTorch steps run"

if wants torch; then
  rm -rf "$WORK/oracle" # an earlier run's oracle files must not stand in for this one's
  step torch 150 python3 $T/torch_bench.py --mode eager --out "$RESULTS/torch_eager.json" --oracle-dir "$WORK/oracle"
fi
if [ $ok = 1 ] && wants logits; then
  rm -f "$WORK/ours_logits.npy"
  step logits 120 "$NODE" "$APP/dist/gpu_logits.js" --model densenet121 --weights "$WORK/oracle/densenet121.safetensors" \
    --input "$WORK/oracle/input.npy" --out "$WORK/ours_logits.npy" &&
  python3 $T/compare_logits.py --ours "$WORK/ours_logits.npy" --ref "$WORK/oracle/torch_cpu_f64.npy" \
    --torch-cuda "$WORK/oracle/torch_cuda_f32.npy" --out "$RESULTS/logits.json" || FAILED+=("logits oracle")
fi
if [ $ok = 1 ] && wants train; then
  step train 270 "$NODE" "$APP/dist/cli.js" bench train --models "$TRAIN_MODEL" --batches "$TRAIN_BATCH" \
    --impls ours-naive,ours-shared,ours-recompute,ours-fused,tfjs-webgpu --steps 20 --budget 45 --json "$RESULTS/train.json"
fi
if [ $ok = 1 ] && wants inference; then
  step inference 150 "$NODE" "$APP/dist/cli.js" bench inference --batches 1,32 --reps 10 --warmup 2 --memory fused --json "$RESULTS/inference.json"
fi
if [ $ok = 1 ] && wants profile; then
  # Each profile: a warm-up step, then 3 × (plain, timestamped whole, timestamped launch by launch).
  step profile 60 "$NODE" "$APP/dist/cli.js" bench profile --model "$TRAIN_MODEL" --batch "$TRAIN_BATCH" --mode train --memory fused \
    --steps 3 --top 20 --json "$RESULTS/profile_train.json" --trace "$RESULTS/trace_train.json"
  step profile 60 "$NODE" "$APP/dist/cli.js" bench profile ${GPU_PROFILE_INFERENCE:---model densenet121 --batch 32} --mode inference --memory fused \
    --steps 3 --top 20 --json "$RESULTS/profile_inference.json"
fi
TRAIN_FUSED=(bench train --models "$TRAIN_MODEL" --batches "$TRAIN_BATCH" --impls ours-fused --steps 20 --budget 45)
if [ $ok = 1 ] && wants tune; then
  step tune 90 "$NODE" "$APP/dist/cli.js" tune --model "$TRAIN_MODEL" --batch "$TRAIN_BATCH" --memory fused --budget "${GPU_TUNE_BUDGET:-60}"
fi
if [ $ok = 1 ] && wants tuned; then
  step tuned 60 "$NODE" "$APP/dist/cli.js" "${TRAIN_FUSED[@]}" --json "$RESULTS/train_tuned.json"
fi
if [ $ok = 1 ] && wants norobust; then
  DENSENET_WGSL_DISABLE_ROBUSTNESS=1 step norobust 60 "$NODE" "$APP/dist/cli.js" "${TRAIN_FUSED[@]}" --no-tune-cache --json "$RESULTS/train_norobust.json"
fi
if wants compile; then
  step compile 600 python3 $T/torch_bench.py --mode compile --out "$RESULTS/torch_compile.json" --train-steps 20 --infer-reps 10
fi
if wants report; then
  echo
  python3 $T/report.py --train "$RESULTS/train.json" --inference "$RESULTS/inference.json" --torch-eager "$RESULTS/torch_eager.json" \
    --torch-compile "$RESULTS/torch_compile.json" --logits "$RESULTS/logits.json" --info "$WORK/info.txt" --md "$RESULTS/table.md" --json "$RESULTS/results.json" \
    --profile-train "$RESULTS/profile_train.json" --profile-inference "$RESULTS/profile_inference.json" \
    --train-tuned "$RESULTS/train_tuned.json" --train-norobust "$RESULTS/train_norobust.json" --train-model "$TRAIN_MODEL" --train-batch "$TRAIN_BATCH"
fi
echo
if [ ${#FAILED[@]} -gt 0 ]; then echo "run.sh: done in $SECONDS s; did not complete: ${FAILED[*]}"; exit 1; fi
echo "run.sh: done in $SECONDS s; everything ran"
