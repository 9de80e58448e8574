#!/usr/bin/env bash
# Every workflow's --quick run on one device, one after another, each under its own time limit.
# Writes DEST/summary.tsv (workflow, exit code, seconds), DEST/smoke.log (all output) and each run's folder under
# DEST/runs/. Used to try CUDA on a lent GPU machine; on a CPU-only machine pass `cpu`.
#
#   bash bench/device_smoke.sh cuda /tmp/smoke            # REPLEARN_DATA must hold mnist/ and fashion-mnist/
#   FIELD=/path/to/aureus-maicrobe bash bench/device_smoke.sh cpu /tmp/smoke
#
# `label` runs through bench/label_smoke.py (a scripted session: six labels, then Ctrl-C); on CUDA a one-process
# `torchrun ... --ddp` run tries the NCCL path.
set -u
device=${1:?device: cuda or cpu}
dest=${2:?destination folder}
field=${FIELD:-${REPLEARN_DATA:-.}/aureus-maicrobe}
limit=${LIMIT:-150}
mkdir -p "$dest/runs"
runs="$dest/runs"
log="$dest/smoke.log"
printf 'workflow\trc\tseconds\n' >"$dest/summary.tsv"

run() {  # run NAME CMD...: run CMD, record its exit code and wall time
  local name=$1; shift
  local t0=$SECONDS
  echo "=== $name: $*" >>"$log"
  timeout "$limit" "$@" >>"$log" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" | tee -a "$dest/summary.tsv"
}
step() { local name=$1; shift; run "$name" python3 -m replearn "$@"; }  # step NAME ARGS...: `replearn ARGS...`

common=(--quick --device "$device" --no-progress --overwrite)
step synth synth --quick --out "$runs/synth.npz"
step assignment assignment "${common[@]}" --out "$runs/assignment"
step predict predict --model "$runs/assignment" "$runs/synth.npz" --key labelled --device "$device" --out "$runs/predict.csv"
step fashion fashion "${common[@]}" --out "$runs/fashion"
step transfer transfer "${common[@]}" --base "$runs/fashion" --compare --out "$runs/transfer"
step autoencoder autoencoder "${common[@]}" --out "$runs/autoencoder"
step autoencoder_umap autoencoder "${common[@]}" --objective recon+tsne --out "$runs/autoencoder_umap"
step embed embed --model "$runs/assignment" "$runs/synth.npz" --key labelled --device "$device" --out "$runs/codes.npz"
step crops crops --membrane "$field/test_membrane.tif" --phase "$field/test_phase.tif" --out "$runs/crops.npz"
step explore explore "$runs/autoencoder" --device "$device" --out "$runs/explore.html"
run label python3 "$(dirname "$0")/label_smoke.py" "$runs/crops.npz" "$runs/labels.npz" --model "$runs/assignment" \
  --device "$device"
step domain domain "${common[@]}" --model "$runs/assignment" --real "$runs/crops.npz" --out "$runs/domain"
step trajectories trajectories "${common[@]}" --out "$runs/trajectories"
step fewshot fewshot "${common[@]}" --out "$runs/fewshot"
step zeroshot zeroshot "${common[@]}" --out "$runs/zeroshot"
step fewlabels fewlabels "${common[@]}" --out "$runs/fewlabels"
if [[ $device == cuda* ]]; then
  run ddp_fashion torchrun --standalone --nproc-per-node 1 -m replearn fashion --ddp "${common[@]}" \
    --out "$runs/fashion_ddp"
fi
step course course "${common[@]}" --out "$runs/course"
