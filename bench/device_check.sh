#!/usr/bin/env bash
# Every workflow's --quick run on one device (default cuda), one after another, as a smoke check.
#
#   bash bench/device_check.sh OUTDIR DATADIR CELLS.npz [DEVICE]
#
# DATADIR holds mnist/ and fashion-mnist/ (the IDX files); CELLS.npz is a labelled crops file
# (`replearn crops --labels ...`). Each step's output goes to OUTDIR/log.txt, one line per step
# (name, exit status, seconds) to OUTDIR/summary.tsv, and the runs' JSON/CSV outputs to OUTDIR/runs.tar.gz.
# A failing step does not stop the others; steps that need an earlier run's model skip when it failed.
set -u
OUT_DIR=${1:?OUTDIR}; DATA=${2:?DATADIR}; CELLS=${3:?CELLS.npz}; DEVICE=${4:-cuda}
RUNS=$(mktemp -d); mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/log.txt"; SUMMARY="$OUT_DIR/summary.tsv"; : >"$LOG"; : >"$SUMMARY"
export REPLEARN_DATA="$DATA" MPLBACKEND=Agg PYTHONUNBUFFERED=1
RL=(python3 -m replearn)
COMMON=(--device "$DEVICE" --no-progress)

step() {  # step NAME LIMIT_S CMD...
    local name=$1 limit=$2; shift 2
    echo "=== $name: $*" >>"$LOG"
    local start=$SECONDS
    timeout "$limit" "$@" >>"$LOG" 2>&1
    local rc=$?
    printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" | tee -a "$SUMMARY"
    return $rc
}

{
    python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
    nvidia-smi -L 2>/dev/null
    python3 -m pip list 2>/dev/null | grep -iE "^(torch|numpy|scipy|scikit-learn|scikit-image|safetensors|matplotlib|bokeh) "
} >>"$LOG" 2>&1

step fashion 240 "${RL[@]}" fashion --quick "${COMMON[@]}" --out "$RUNS/fashion"
[ -d "$RUNS/fashion" ] && step transfer 240 "${RL[@]}" transfer --quick --compare "${COMMON[@]}" \
    --base "$RUNS/fashion" --out "$RUNS/transfer"
step autoencoder 240 "${RL[@]}" autoencoder --quick "${COMMON[@]}" --out "$RUNS/autoencoder"
[ -d "$RUNS/autoencoder" ] && step embed-digits 120 "${RL[@]}" embed --model "$RUNS/autoencoder" \
    "$DATA/mnist/t10k-images-idx3-ubyte.gz" --device "$DEVICE" --out "$RUNS/embed_digits.npz"
[ -d "$RUNS/autoencoder" ] && step explore 180 "${RL[@]}" explore "$RUNS/autoencoder" --device "$DEVICE" \
    --out "$RUNS/explore.html"
step assignment 300 "${RL[@]}" assignment --quick "${COMMON[@]}" --out "$RUNS/assignment"
if [ -d "$RUNS/assignment" ]; then
    step predict 120 "${RL[@]}" predict --model "$RUNS/assignment" "$CELLS" --device "$DEVICE" \
        --out "$RUNS/predict.csv"
    step embed-cells 120 "${RL[@]}" embed --model "$RUNS/assignment" "$CELLS" --key labelled \
        --device "$DEVICE" --out "$RUNS/embed_cells.npz"
    step domain 240 "${RL[@]}" domain --quick "${COMMON[@]}" --model "$RUNS/assignment" --real "$CELLS" \
        --out "$RUNS/domain"
    step label 120 python3 - "$CELLS" "$RUNS" "$DEVICE" <<'EOF'
import json, re, signal, subprocess, sys, urllib.request
import numpy as np
crops, runs, device = sys.argv[1:4]
with np.load(crops) as d:  # the crops as a pool to label
    images = np.concatenate([d["labelled"], d["unlabelled"]])
cells = f"{runs}/pool.npz"
np.savez(cells, labelled=images[:0], labels=np.zeros(0, np.int64), unlabelled=images)
proc = subprocess.Popen([sys.executable, "-m", "replearn", "label", cells, "--model", f"{runs}/assignment",
                         "--no-browser", "--device", device, "--out", f"{runs}/labels.npz"],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
url = None
for line in proc.stdout:
    print(line, end="")
    if m := re.search(r"open (http\S+)", line):
        url = m.group(1)
        break
assert url, "no address printed"
base, token = url.split("?")[0].rstrip("/"), url.split("token=")[1]
def call(method, path, body=None):
    req = urllib.request.Request(f"{base}{path}?token={token}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())
for stage in (0, 2, 1, 0, 2, 0):
    state = call("GET", "/api/state")
    call("POST", "/api/label", {"index": state["next"], "stage": stage})
print("state after 6 labels:", {k: v for k, v in call("GET", "/api/state").items() if not isinstance(v, (list, dict))})
proc.send_signal(signal.SIGINT)
print(proc.communicate(timeout=60)[0])
sys.exit(proc.returncode if proc.returncode not in (None, -2, 130) else 0)
EOF
fi
step trajectories 240 "${RL[@]}" trajectories --quick "${COMMON[@]}" --out "$RUNS/trajectories"
step fewshot 240 "${RL[@]}" fewshot --quick "${COMMON[@]}" --out "$RUNS/fewshot"
step zeroshot 240 "${RL[@]}" zeroshot --quick "${COMMON[@]}" --out "$RUNS/zeroshot"
step fewlabels 300 "${RL[@]}" fewlabels --quick "${COMMON[@]}" --out "$RUNS/fewlabels"
if [[ "$DEVICE" == cuda* ]]; then
    step ddp-fashion 240 torchrun --standalone --nproc-per-node 1 -m replearn fashion --ddp --quick \
        "${COMMON[@]}" --out "$RUNS/fashion_ddp"
fi
step course 420 "${RL[@]}" course --quick "${COMMON[@]}" --out "$RUNS/course"

(cd "$RUNS" && find . -maxdepth 3 -type f \( -name '*.json' -o -name '*.csv' -o -name '*.tsv' \) -size -2M \
    | tar czf "$OUT_DIR/runs.tar.gz" -T -)
echo "done: $(awk -F'\t' '$2 == 0' "$SUMMARY" | wc -l) of $(wc -l <"$SUMMARY") steps exited 0"
