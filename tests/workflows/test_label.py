"""``replearn label``: the server driven through its HTTP API in-process, its refusals, resuming, and a browser."""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from replearn.cli import main
from replearn.data import AssignmentData, load_assignment, synthetic_aureus
from replearn.workflows import label


@pytest.fixture(scope="module")
def crops_file(tmp_path_factory) -> Path:
    """SYNTHETIC crops to label: 6 labelled, 40 unlabelled (40x40)."""
    path = tmp_path_factory.mktemp("crops") / "cells.npz"
    synthetic_aureus(6, 40, seed=1).save_npz(path)
    return path


class Client:
    """A labelling server serving in a thread, and requests to it."""

    def __init__(self, crops: Path, out: Path, **settings) -> None:
        self.server = label.start(label.Config(crops=str(crops), browser=False, **settings), out)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.token = self.server.token

    def request(self, method: str, path: str, body: bytes | dict | None = None, token: bool = True,
                headers: dict | None = None) -> tuple[int, object]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.server_port, timeout=20)
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        url = path + (("&" if "?" in path else "?") + f"token={self.token}" if token else "")
        conn.request(method, url, body=data, headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        kind = resp.getheader("Content-Type", "")
        return resp.status, json.loads(raw) if kind.startswith("application/json") else raw

    def state(self) -> dict:
        status, state = self.request("GET", "/api/state")
        assert status == 200
        return state

    def label(self, stage: int) -> int:
        """Label the crop the page would show now with ``stage``; return its index."""
        index = self.state()["next"]
        status, state = self.request("POST", "/api/label", {"index": index, "stage": stage})
        assert status == 200, state
        return index

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.app.learner.close()
        self.thread.join(5)


@pytest.fixture
def client(tmp_path, crops_file):
    c = Client(crops_file, tmp_path / "labelled.npz")
    yield c
    c.close()


def test_label_undo_skip_restart_and_resume(tmp_path, crops_file):
    out = tmp_path / "labelled.npz"
    c = Client(crops_file, out)
    first = c.state()
    assert first["labelled"] == 0 and first["pool"] == 40 and first["counts"] == np.bincount(
        load_assignment(crops_file).labels, minlength=3).tolist()
    given = []
    for stage in (0, 1, 2, 0, 1, 2, 0):
        given.append((c.label(stage), stage))
    undone = c.request("POST", "/api/undo", {})[1]
    assert undone["labelled"] == 6
    given.pop()
    skipped = c.state()["next"]
    assert c.request("POST", "/api/skip", {"index": skipped})[1]["skipped"] == 1
    assert c.state()["next"] != skipped
    c.close()  # stop the server: everything confirmed is on disk

    saved = load_assignment(out)  # the course's format, as replearn assignment --data reads it
    prior = load_assignment(crops_file)
    pool = prior.unlabelled
    np.testing.assert_array_equal(saved.labels, np.concatenate([prior.labels, [s for _, s in given]]))
    np.testing.assert_array_equal(saved.labelled[6:], pool[[i for i, _ in given]])
    assert len(saved.unlabelled) == 40 - 6 and saved.synthetic
    with np.load(out, allow_pickle=False) as f:
        assert f["label_index"].tolist() == [-1] * 6 + [i for i, _ in given]
        assert f["skipped"].tolist() == [skipped] and len(f["label_time"]) == 12
        assert str(f["crops_sha256"]) and f["action_kind"].tolist()[-1] == "skip"

    again = Client(crops_file, out)  # restart: continues where it stopped
    try:
        state = again.state()
        assert state["labelled"] == 6 and state["skipped"] == 1 and state["next"] != skipped
        assert again.request("POST", "/api/undo", {})[1]["skipped"] == 0  # the history survived the restart
        assert again.request("POST", "/api/undo", {})[1]["labelled"] == 5
    finally:
        again.close()
    assert len(load_assignment(out, n_classes=3).labels) == 6 + 5


def test_margin_sampling_and_cross_validated_accuracy_after_labels(client):
    for stage in (0, 1, 2, 0, 1, 2):
        client.label(stage)
    learner = client.server.app.learner
    assert learner.wait(client.server.app.session.version)
    state = client.state()
    assert state["cv_accuracy"] is not None and 0 <= state["cv_accuracy"] <= 1
    assert state["cv_folds"] == min(5, min(state["counts"]))
    assert state["model_labels"] == state["version"] == 6
    probs = learner.model.predict_proba(learner.features)
    top = np.sort(probs, axis=1)
    margin = top[:, -1] - top[:, -2]
    remaining = client.server.app.session.remaining()
    assert state["next"] == remaining[np.argmin(margin[remaining])]


def test_requests_without_the_token_or_from_another_host_are_refused(client):
    assert client.request("GET", "/", token=False)[0] == 403
    assert client.request("GET", "/api/state?token=wrong", token=False)[0] == 403
    assert client.request("POST", "/api/label", {"index": 0, "stage": 0}, token=False)[0] == 403
    assert client.request("GET", "/api/state", headers={"Host": "evil.example:80"})[0] == 403
    status, page = client.request("GET", "/")
    assert status == 200 and b"replearn label" in page and b"http" not in page.split(b"<script>")[1]
    assert client.state()["labelled"] == 0


@pytest.mark.parametrize("method, path, body, status", [
    ("POST", "/api/label", {"index": 40, "stage": 0}, 400),
    ("POST", "/api/label", {"index": -1, "stage": 0}, 400),
    ("POST", "/api/label", {"index": "3", "stage": 0}, 400),
    ("POST", "/api/label", {"index": 0, "stage": 3}, 400),
    ("POST", "/api/label", {"index": 0, "stage": True}, 400),
    ("POST", "/api/label", b"not json", 400),
    ("POST", "/api/label", b"[1, 2]", 400),
    ("POST", "/api/label", b"{" + b" " * 5000 + b"}", 413),
    ("POST", "/api/undo", {}, 400),  # nothing to undo
    ("POST", "/api/undo", {"index": 1}, 400),
    ("POST", "/api/erase", {}, 404),
    ("GET", "/crop/40.png", None, 404),
    ("GET", "/../../etc/passwd", None, 404),
    ("GET", "/context/0.png", None, 404),  # no field beside these crops
    ("PUT", "/api/label", {"index": 0, "stage": 0}, 405),
    ("DELETE", "/api/state", None, 405),
    ("PATCH", "/", None, 405),
])
def test_bad_requests_get_a_4xx_and_change_nothing(client, method, path, body, status):
    before = client.server.app.session.out.read_bytes()
    assert client.request(method, path, body)[0] == status
    assert client.server.app.session.out.read_bytes() == before
    assert client.state()["labelled"] == 0 and client.state()["version"] == 0


def test_a_body_without_a_length_is_refused(client):
    conn = http.client.HTTPConnection("127.0.0.1", client.server.server_port, timeout=10)
    conn.putrequest("POST", f"/api/label?token={client.token}")
    conn.endheaders()
    assert conn.getresponse().status == 411
    conn.close()


def test_labelling_a_crop_twice_is_refused(client):
    index = client.state()["next"]
    assert client.request("POST", "/api/label", {"index": index, "stage": 1})[0] == 200
    status, answer = client.request("POST", "/api/label", {"index": index, "stage": 2})
    assert status == 400 and "labelled already" in answer["error"]


def test_field_context_from_crops_companions(tmp_path):
    from PIL import Image

    from replearn.data.crops import output_paths, table_to_csv
    from replearn.workflows._label_app import OVERLAY_ZOOM

    crops = tmp_path / "cells.npz"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (5, 10, 10), dtype=np.uint8)
    AssignmentData(np.zeros((0, 10, 10), np.uint8), np.zeros(0, np.int64), images).save_npz(crops)
    paths = output_paths(crops)
    table = {"id": np.arange(1, 6), "centroid_row": np.full(5, 50.0), "centroid_col": np.arange(5) * 20.0 + 10,
             "stage": np.full(5, -1)}
    paths["csv"].write_text(table_to_csv(table))
    field = (100 * OVERLAY_ZOOM, 120 * OVERLAY_ZOOM)
    Image.fromarray(np.full((int(field[0]), int(field[1]), 3), 90, np.uint8)).save(paths["overlay"])
    c = Client(crops, tmp_path / "labelled.npz")
    try:
        assert c.state()["context"] is True
        status, png = c.request("GET", "/context/2.png")
        status_crop, crop_png = c.request("GET", "/crop/2.png")
    finally:
        c.close()
    assert status == status_crop == 200
    import io

    window = np.asarray(Image.open(io.BytesIO(png)))
    assert (window == (255, 220, 0)).all(axis=2).any(), "the crop's box is drawn"
    assert (window == 90).all(axis=2).any(), "the field around it is shown"
    big = np.asarray(Image.open(io.BytesIO(crop_png)))
    assert big.shape == (320, 320) and (big[::32, ::32] == images[2]).all()


@pytest.mark.parametrize("args, message", [
    (["label", "missing.npz"], "no such file"),
    (["label", "{crops}", "--out", "{tmp}/x.txt"], "must name an .npz"),
    (["label", "{crops}", "--out", "{crops}"], "is the crops file itself"),
    (["label", "{crops}", "--out", "{tmp}/other.npz"], "other crops"),
    (["label", "{crops}", "--port", "70000"], "--port"),
])
def test_mistakes_are_one_line_before_serving(tmp_path, crops_file, capsys, args, message):
    synthetic_aureus(4, 10, seed=5).save_npz(tmp_path / "o.npz")
    Client(tmp_path / "o.npz", tmp_path / "other.npz").close()  # a labels file of other crops
    args = [a.format(crops=crops_file, tmp=tmp_path) for a in args]
    assert main(args + ["--no-browser"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# ----------------------------------------------------------------------------- in a browser
def test_three_labels_by_keyboard_in_chromium(client):
    from _browser import chrome
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chrome()
    try:
        browser.get(client.server.url)
        WebDriverWait(browser, 20).until(lambda b: "crop " in b.find_element(By.ID, "which").text)
        body = browser.find_element(By.TAG_NAME, "body")
        for k, key in enumerate("012"):
            shown = browser.find_element(By.ID, "which").text
            body.send_keys(key)
            done = f"{k + 1} labelled here"
            WebDriverWait(browser, 20).until(lambda b, done=done: done in b.find_element(By.ID, "progress").text)
            assert browser.find_element(By.ID, "which").text != shown
        body.send_keys("u")
        WebDriverWait(browser, 20).until(lambda b: "2 labelled here" in b.find_element(By.ID, "progress").text)
    finally:
        browser.quit()
    with np.load(client.server.app.session.out, allow_pickle=False) as f:
        assert f["labels"][6:].tolist() == [0, 1]
        assert f["action_kind"].tolist() == ["label", "label"]


def test_the_command_serves_and_a_killed_server_keeps_every_confirmed_label(tmp_path, crops_file):
    import os
    import re
    import signal
    import subprocess
    import sys

    out = tmp_path / "labelled.npz"
    env = {**os.environ, "PYTHONPATH": str(Path(label.__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "replearn", "label", str(crops_file), "--out", str(out),
                             "--no-browser"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        port, token = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", lines[1]).groups()
        given = []
        for stage in (2, 0):
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=20)
            conn.request("GET", f"/api/state?token={token}")
            index = json.loads(conn.getresponse().read())["next"]
            conn.request("POST", f"/api/label?token={token}", body=json.dumps({"index": index, "stage": stage}))
            assert conn.getresponse().status == 200
            conn.close()
            given.append(index)
    finally:
        proc.send_signal(signal.SIGKILL)  # no chance to clean up
        proc.wait(10)
        proc.stdout.close()
    with np.load(out, allow_pickle=False) as f:
        assert f["label_index"][-2:].tolist() == given and f["labels"][-2:].tolist() == [2, 0]
    assert not list(tmp_path.glob(".*.tmp"))
