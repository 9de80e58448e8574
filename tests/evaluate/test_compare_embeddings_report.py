"""Comparison sentences, 2-D embeddings, figures and the report writer."""

import numpy as np
import pytest

from replearn.errors import ReplearnError
from replearn.evaluate import Report, compare_sentence, embed_2d, knn_accuracy
from replearn.evaluate.figures import embeddings_figure, image_rows, save_figure


def test_sentence_says_clear_difference():
    s = compare_sentence("CNN", [0.90, 0.91, 0.92, 0.90, 0.91], "k-NN", [0.70, 0.71, 0.69, 0.72, 0.70])
    assert s.startswith("CNN has the higher mean accuracy")
    assert "larger than the run-to-run noise" in s


def test_sentence_says_within_noise():
    s = compare_sentence("A", [0.80, 0.85, 0.78, 0.83, 0.81], "B", [0.81, 0.79, 0.84, 0.80, 0.82])
    assert "within the noise" in s


def test_sentence_single_run():
    assert "no test" in compare_sentence("A", [0.8], "B", [0.7])


@pytest.mark.parametrize("method", ["pca", "isomap", "tsne"])
def test_embeddings_keep_separated_clusters_apart(method):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    centres = rng.normal(scale=20, size=(3, 10))
    x = centres[labels] + rng.normal(size=(120, 10))
    ref, query = embed_2d(method, x[::2], x[1::2], seed=0)
    assert ref.shape == (60, 2) and query.shape == (60, 2)
    assert knn_accuracy(ref, labels[::2], query, labels[1::2], k=5) == 1.0


def test_unknown_embedding():
    with pytest.raises(ReplearnError, match="unknown embedding"):
        embed_2d("umap", np.zeros((5, 2)))


def test_report_writes_markdown_and_html_with_embedded_figure(tmp_path):
    rng = np.random.default_rng(0)
    fig_path = save_figure(
        embeddings_figure({"PCA": (rng.normal(size=(30, 2)), np.repeat([0, 1, 2], 10))}, ["a", "b", "c"]),
        tmp_path / "figs" / "pca.png",
    )
    assert fig_path.stat().st_size > 1000
    save_figure(image_rows({"original": rng.random((4, 8, 8)), "restored": rng.random((4, 8, 8))}), tmp_path / "r.png")
    report = Report("Test report", banner="SYNTHETIC DATA")
    report.heading("Results")
    report.table(["variant", "accuracy"], [["CNN", "0.91 ± 0.02"]])
    report.figure(fig_path, "PCA of codes")
    report.text("a < b & c")
    md, page = report.write(tmp_path)
    text = md.read_text()
    assert "| CNN | 0.91 ± 0.02 |" in text and "![PCA of codes](figs/pca.png)" in text
    assert "SYNTHETIC DATA" in text
    html = page.read_text()
    assert "data:image/png;base64," in html and "a &lt; b &amp; c" in html
