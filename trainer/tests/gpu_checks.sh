#!/usr/bin/env bash
# Every trainer check that needs torch (and a CUDA GPU), in one go, for a GPU machine's short lease:
#   bash trainer/tests/gpu_checks.sh [out-dir]
# Writes one log per check into out-dir (default $OUT, else /tmp/drag-gpu-checks) and prints each
# log's tail and exit code. Checks: package versions and `drag_trainer env`; tests/gpu_smoke.py
# (SFT, DPO, DPO from an SFT adapter with and without gradient checkpointing and their peak memory,
# merge, image SFT, options, SIGTERM, SIGUSR1 + --resume auto against a straight run) with a tiny
# Qwen2-VL and again with a tiny Qwen3-VL; torchrun_cpu (torchrun --nproc_per_node 2 on the CPU,
# gloo: equal micro-batches per rank, no_sync, one log line per step); bench/trainer_sft.py (dynamic
# padding vs pad-to-max-length); tests/test_torch.py (the same smoke test on the CPU).
# CHECKS="gpu_smoke test_torch_cpu" runs only those; *_LIMIT variables set each check's timeout.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-${OUT:-/tmp/drag-gpu-checks}}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
check() {
  local name=$1 limit=$2 start rc
  shift 2
  case " ${CHECKS:-$name} " in *" $name "*) ;; *) return 0 ;; esac
  start=$(date +%s)
  echo "== $name"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  rc=$?
  tail -n "${TAIL_LINES:-25}" "$out/$name.log"
  echo "== $name: rc=$rc in $(( $(date +%s) - start )) s"
}
check env "${ENV_LIMIT:-90}" bash -c "nvidia-smi -L; $py -m pip list 2>/dev/null | grep -iE '^(torch|transformers|peft|tokenizers|accelerate|bitsandbytes|pillow|tensorboard|trl|vllm) '; $py -m drag_trainer env"
check gpu_smoke "${SMOKE_LIMIT:-240}" "$py" "$here/tests/gpu_smoke.py"
check gpu_smoke_qwen3 "${SMOKE_LIMIT:-240}" "$py" "$here/tests/gpu_smoke.py" --arch=qwen3_vl
check torchrun_cpu "${DIST_LIMIT:-420}" "$py" "$here/tests/gpu_smoke.py" --cpu --only=torchrun
check bench_trainer_sft "${BENCH_LIMIT:-120}" "$py" "$here/../bench/trainer_sft.py"
check test_torch_cpu "${CPU_LIMIT:-300}" bash -c "cd '$here/tests' && $py -m unittest -v test_torch"
