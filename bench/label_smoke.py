"""Drive one `replearn label` session without a browser: start it, label a few crops, stop it with Ctrl-C.

    python bench/label_smoke.py CROPS.npz OUT.npz [--model RUN] [--device DEVICE] [--labels 0 2 1]

Prints the session's state after the labels and exits with the session's exit status (0 after Ctrl-C);
used by ``bench/device_smoke.sh`` to try `label` on a device.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import urllib.request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("crops")
    parser.add_argument("out")
    parser.add_argument("--model")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--labels", type=int, nargs="+", default=[0, 2, 1, 0, 2, 0])
    args = parser.parse_args()
    cmd = [sys.executable, "-m", "replearn", "label", args.crops, "--no-browser", "--device", args.device,
           "--out", args.out, *(["--model", args.model] if args.model else [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    for line in proc.stdout:
        print(line, end="")
        if match := re.search(r"open (http\S+)", line):
            url = match.group(1)
            break
    if url is None:
        return proc.wait() or 1
    base, token = url.split("?")[0].rstrip("/"), url.split("token=")[1]

    def call(method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(f"{base}{path}?token={token}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    for stage in args.labels:
        call("POST", "/api/label", {"index": call("GET", "/api/state")["next"], "stage": stage})
    state = call("GET", "/api/state")
    print("state:", {k: v for k, v in state.items() if not isinstance(v, (list, dict))})
    proc.send_signal(signal.SIGINT)
    print(proc.communicate(timeout=120)[0], end="")
    if state["labelled"] != len(args.labels):
        print(f"expected {len(args.labels)} labels, the session has {state['labelled']}")
        return 1
    return 0 if proc.returncode in (0, -signal.SIGINT, 130) else proc.returncode


if __name__ == "__main__":
    sys.exit(main())
