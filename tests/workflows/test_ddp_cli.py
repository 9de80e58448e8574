"""`torchrun -m replearn <workflow> --ddp`: two CPU processes (gloo) end with one run folder and identical results."""

import json
import os
import shutil
import subprocess
import sys



def test_fashion_quick_under_torchrun(tmp_path, shared_datasets):
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    cmd = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "replearn", "fashion", "--ddp", "--quick",
           "--no-progress", "--epochs", "1", "--train-size", "512", "--test-size", "256",
           "--data-dir", str(shared_datasets)]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1  # both ranks used rank 0's folder
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert out.stdout.count("Fashion-MNIST test accuracy") == 1  # only rank 0 prints
