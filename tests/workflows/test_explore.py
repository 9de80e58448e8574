"""``replearn explore``: one self-contained page holding every point and its crop; it renders in Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from replearn.cli import main
from replearn.data import synthetic_aureus
from replearn.encoders import CNNClassifier
from replearn.evaluate import AutoEncoderEmbedding
from replearn.models import save_model

SIZE = 40


@pytest.fixture(scope="module")
def data():
    """SYNTHETIC crops: 30 labelled, 50 unlabelled (40x40)."""
    return synthetic_aureus(30, 50, seed=0)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data):
    """An assignment-like run folder: a 3-D autoencoder, a CNN classifier and the config naming the data."""
    run = tmp_path_factory.mktemp("a-run")
    ae = AutoEncoderEmbedding(blocks=((4,), (4,)), code_dim=3, epochs=1, batch_size=16, device="cpu")
    save_model(ae.fit(data.unlabelled).model_, run / "autoencoder-d3.safetensors", meta={"workflow": "test"})
    cnn = CNNClassifier(network="small_cnn", network_params=dict(depth=2, width=4, dropout=0.0, dense=8), epochs=1,
                        classes=range(3), device="cpu").fit(data.labelled, data.labels)
    save_model(cnn.model_, run / "model.safetensors", meta={"workflow": "test", "class_names": data.class_names})
    config = {"data_file": None, "seed": 0, "data": {"n_labelled": 30, "n_unlabelled": 50, "preset": "sim"}}
    (run / "config.json").write_text(json.dumps(config))
    return run


class _Tags(HTMLParser):
    """Every tag's URL-bearing attributes (script and style contents are not parsed as tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.json_scripts: list[str] = []
        self._in_json = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href", "data", "action", "poster") and v]
        self._in_json = tag == "script" and a.get("type") == "application/json"

    def handle_data(self, text):
        if self._in_json:
            self.json_scripts.append(text)
            self._in_json = False


def _column(doc, name):
    """The list stored under ``name`` in the page's data source (Bokeh stores a map as [key, value] pairs)."""
    if isinstance(doc, list) and len(doc) == 2 and doc[0] == name and isinstance(doc[1], list):
        return doc[1]
    if isinstance(doc, dict):
        if isinstance(doc.get(name), list) and doc[name] and isinstance(doc[name][0], str):
            return doc[name]
        for value in doc.values():
            found = _column(value, name)
            if found is not None:
                return found
    elif isinstance(doc, list):
        for value in doc:
            found = _column(value, name)
            if found is not None:
                return found
    return None


def _page(path):
    html = path.read_text()
    tags = _Tags()
    tags.feed(html)
    assert len(tags.json_scripts) == 1
    return html, tags, json.loads(tags.json_scripts[0])


def test_page_holds_every_point_with_its_thumbnail_and_nothing_external(tmp_path, run_dir, data):
    from PIL import Image

    npz = tmp_path / "crops.npz"
    data.save_npz(npz)
    out = tmp_path / "e.html"
    assert main(["explore", str(run_dir), str(npz), "--view", "pca", "--out", str(out)]) == 0
    html, tags, doc = _page(out)
    items, thumbs = _column(doc, "item"), _column(doc, "thumb")
    assert items == [f"labelled[{i}]" for i in range(30)] + [f"unlabelled[{j}]" for j in range(50)]
    assert len(thumbs) == 80
    for k in (0, 29, 79):  # each thumbnail is the crop itself, losslessly
        assert thumbs[k].startswith("data:image/png;base64,")
        crop = np.asarray(Image.open(io.BytesIO(base64.b64decode(thumbs[k].split(",", 1)[1]))))
        np.testing.assert_array_equal(crop, data.labelled[k] if k < 30 else data.unlabelled[k - 30])
    assert _column(doc, "label")[:30] == [data.class_names[y] for y in data.labels]
    assert set(_column(doc, "label")[30:]) == {"unlabelled"}
    assert set(_column(doc, "source")) == {"SYNTHETIC"} and "SYNTHETIC data" in html
    for colouring in ("colour by label", "colour by predicted", "colour by confidence", "colour by source"):
        assert colouring in html
    assert not [u for u in tags.urls if not u.startswith(("data:", "#"))], "the page must load nothing from outside"
    assert not re.search(r"https?://", tags.json_scripts[0])
    assert "<script src=" not in html and "Export selection as CSV" in html


def test_default_images_come_from_the_runs_config_and_max_points_subsamples(tmp_path, run_dir, capsys):
    out = tmp_path / "e.html"
    assert main(["explore", str(run_dir), "--max-points", "25", "--view", "pca", "--out", str(out)]) == 0
    _, _, doc = _page(out)
    items = _column(doc, "item")
    assert len(items) == 25 and len(set(items)) == 25
    assert "25 points" in capsys.readouterr().out


def test_a_2d_autoencoder_is_shown_in_its_own_code(tmp_path, data):
    ae = AutoEncoderEmbedding(blocks=((4,), (4,)), code_dim=2, epochs=1, batch_size=16, device="cpu").fit(data.labelled)
    save_model(ae.model_, tmp_path / "ae" / "model.safetensors", meta={"workflow": "test"})
    npz = tmp_path / "crops.npz"
    data.save_npz(npz)
    from replearn.workflows import _explore_data as d

    points = d.read_points(str(npz))
    codes, predicted, _, _ = d.codes_and_predictions(points, tmp_path / "ae" / "model.safetensors", None, "cpu")
    xy, view = d.view_2d(codes, "auto", 0)
    np.testing.assert_allclose(xy, ae.transform(points.images), rtol=1e-5, atol=1e-6)
    assert view == "the run's 2-D code" and (predicted == -1).all()


@pytest.mark.parametrize("args, message", [
    (["explore", "nowhere"], "no such run folder"),
    (["explore", "{run}", "missing.npz"], "IMAGES missing.npz"),
    (["explore", "{run}", "--out", "{tmp}/e.txt"], "must name an .html file"),
    (["explore", "{run}", "--max-points", "1"], "--max-points"),
    (["explore", "{run}", "--view", "code"], "the codes are 3-D"),
])
def test_mistakes_are_one_line(tmp_path, run_dir, capsys, args, message):
    args = [a.format(run=run_dir, tmp=tmp_path) for a in args]
    assert main(args + (["--out", str(tmp_path / "x.html")] if "--out" not in args else [])) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.html").exists()


def test_run_is_required(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["explore"])
    assert exc.value.code == 2 and "RUN" in capsys.readouterr().err


# ----------------------------------------------------------------------------- in a browser
CANVASES = """
const found = [];
const walk = (root) => { for (const el of root.querySelectorAll('*')) {
  if (el.tagName === 'CANVAS') found.push(el); if (el.shadowRoot) walk(el.shadowRoot); } };
walk(document);
return found.filter((c) => c.width > 100 && c.height > 100).length;
"""


EXPORT = """
const done = arguments[arguments.length - 1];
const source = Bokeh.documents[0].get_model_by_name("points");
source.selected.indices = [0, 31];
HTMLAnchorElement.prototype.click = function () { fetch(this.href).then((r) => r.text()).then(done); };
const buttons = [];
const walk = (root) => { for (const el of root.querySelectorAll('*')) {
  if (el.tagName === 'BUTTON' && el.textContent.includes('Export selection')) buttons.push(el);
  if (el.shadowRoot) walk(el.shadowRoot); } };
walk(document);
buttons[0].click();
"""
"""Select two points, press the export button, and hand back the CSV it would download."""


def test_the_page_renders_in_chromium(tmp_path, run_dir, data):
    from _browser import chrome
    from PIL import Image
    from selenium.webdriver.support.ui import WebDriverWait

    npz = tmp_path / "crops.npz"
    data.save_npz(npz)
    out = tmp_path / "e.html"
    assert main(["explore", str(run_dir), str(npz), "--view", "pca", "--out", str(out)]) == 0
    browser = chrome()
    try:
        browser.get(out.as_uri())
        WebDriverWait(browser, 30).until(lambda b: b.execute_script(CANVASES) > 0)
        resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        shot = tmp_path / "shot.png"
        browser.save_screenshot(str(shot))
        csv_text = browser.execute_async_script(EXPORT)
    finally:
        browser.quit()
    rows = csv_text.strip().split("\n")  # the selection as the button exports it
    assert rows[0] == "index,item,x,y,label,predicted,confidence,source"
    assert [r.split(",")[:2] for r in rows[1:]] == [["0", '"labelled[0]"'], ["31", '"unlabelled[1]"']]
    assert rows[1].split(",")[4] == f'"{data.class_names[data.labels[0]]}"' and rows[2].endswith(",SYNTHETIC")
    assert not [r for r in resources if not r.startswith(("data:", "blob:", "file:"))]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.std() > 10, "the screenshot is blank"
    assert (pixels < 128).mean() > 0.005  # axes, text and points drew something dark
