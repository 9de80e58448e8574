"""What ``replearn domain`` shows: its figures, ``codes.npz``, the report and the closing lines."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from replearn.data import seeded_subset
from replearn.evaluate import Report
from replearn.evaluate.figures import grouped_bars, image_rows, montage, scatter_2d
from replearn.utils.atomic import atomic_path
from replearn.workflows._domain_data import K_NEIGHBOURS, N_SYNTHETIC, QUICK_SYNTHETIC, Crops
from replearn.workflows._domain_measure import pixels

N_SHOW = 8  # real cells in the neighbour figure
N_RECONSTRUCTIONS = 10  # crops of each domain in the reconstruction figure
LEAN_DROP = 0.02  # a statistic is named as the one the statistics' classifier leans on when its AUC falls this much
CAPTIONS = {
    "domain_embedding.png": "Joint 2-D view ({how}): SYNTHETIC crops by stage and REAL cells",
    "domain_neighbours.png": "REAL cells and their nearest SYNTHETIC crops in code space",
    "domain_stages.png": "Stage mix: true for the synthetic crops, guessed for the real cells",
    "domain_reconstructions.png": "Autoencoder reconstructions of REAL and SYNTHETIC crops",
    "domain_statistics.png": "The two image statistics that tell the sets apart most, one point per crop",
}


# ----------------------------------------------------------------------------- Files
def save_codes(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``codes.npz`` (compressed), written atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def add_outputs(result: Any, cfg: Any, description: str, source: Crops, real: Crops, s_codes: np.ndarray,
                r_codes: np.ndarray, s2: np.ndarray, r2: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
    """The figures and the report of a finished run, added to ``result`` (whose metrics are complete)."""
    metrics, names, k = result.metrics, source.class_names, cfg.k
    guess_name = "classifier" if "cnn_guess" in arrays else f"{k}-NN on synthetic codes"
    result.figure("domain_embedding.png", embedding_figure(
        s2, r2, source.labels, arrays.get("cnn_guess", arrays["knn_guess"]), names, guess_name,
        f"{description}: {len(s_codes)} SYNTHETIC crops and {len(r_codes)} REAL cells ({metrics['embedding']['how']})"))
    result.figure("domain_neighbours.png", neighbours_figure(
        source, real, s_codes, r_codes, k, cfg.seed, metrics["nearest_neighbour"]["source_to_source"] or 1.0))
    bars = {"SYNTHETIC crops: true stages": metrics["knn_guess"]["source_fractions"],
            f"REAL cells: {k}-NN guess": metrics["knn_guess"]["fractions"]}
    if "classifier" in metrics:
        bars["REAL cells: classifier guess"] = metrics["classifier"]["real"]["fractions"]
    result.figure("domain_stages.png", grouped_bars(
        bars, names, ylabel="fraction of crops", ylim=(0, 1),
        title="Stage mix: known for the synthetic crops, GUESSED for the real cells"))
    if "recon_real" in arrays:
        result.figure("domain_reconstructions.png", reconstructions_figure(source, real, arrays, metrics, cfg.seed))
    result.figure("domain_statistics.png", statistics_figure(arrays, metrics["image_statistics"]))
    result.report = build_report(metrics, [name for name, _ in result.files if name in CAPTIONS], command_line(cfg))


# ----------------------------------------------------------------------------- Figures
def embedding_figure(s2: np.ndarray, r2: np.ndarray, s_labels: np.ndarray, guess: np.ndarray, names: list[str],
                     guess_name: str, title: str) -> Figure:
    """Left: synthetic crops by stage, real cells as black crosses. Right: real cells by the guessed stage."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.2))
    scatter_2d(left, s2, s_labels, [f"SYNTHETIC: {n}" for n in names],
               title="synthetic crops by stage, real cells as crosses", s=9)
    left.scatter(r2[:, 0], r2[:, 1], s=22, marker="x", color="black", linewidths=0.9, label="REAL cells (no labels)")
    counts = np.bincount(guess, minlength=len(names))
    right.scatter(s2[:, 0], s2[:, 1], s=7, color="0.82", linewidths=0, label="SYNTHETIC crops")
    scatter_2d(right, r2, guess, [f"REAL, guessed {n} ({c})" for n, c in zip(names, counts)], s=26,
               title=f"real cells coloured by the GUESS of the {guess_name} (not ground truth)")
    for ax in (left, right):
        ax.title.set_fontsize(10)
        ax.legend(fontsize=7, loc="best", framealpha=0.8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def neighbours_figure(source: Crops, real: Crops, s_codes: np.ndarray, r_codes: np.ndarray, k: int, seed: int,
                      typical: float) -> Figure:
    """One row per real cell: the REAL crop, then its nearest SYNTHETIC crops (stage, distance / typical)."""
    from sklearn.neighbors import NearestNeighbors

    show = seeded_subset(len(r_codes), N_SHOW, seed)
    dist, idx = NearestNeighbors(n_neighbors=min(k, len(s_codes))).fit(s_codes).kneighbors(r_codes[show])
    images, titles = [], []
    for row, i in enumerate(show):
        images.append(real.images[i])
        titles.append(f"REAL crop {int(i)}")
        for s, d in zip(idx[row], dist[row]):
            images.append(source.images[s])
            titles.append(f"syn. stage {source.class_names[int(source.labels[s])].split()[0]}, d={d / typical:.1f}")
    fig = montage(np.stack(images), ncols=idx.shape[1] + 1, titles=titles, title=(
        f"REAL cells (left, no labels) and their {idx.shape[1]} nearest SYNTHETIC crops in the model's code space\n"
        f"d = distance / typical synthetic-to-synthetic nearest-neighbour distance ({typical:.3g})"))
    height = 1.6 * len(show) + 0.7  # larger panels for the titles, room for the two-line title
    fig.set_size_inches(1.35 * (idx.shape[1] + 1), height)
    fig.tight_layout(pad=0.3, h_pad=0.8, rect=(0, 0, 1, 1 - 0.5 / height))
    return fig


def reconstructions_figure(source: Crops, real: Crops, arrays: dict[str, np.ndarray], metrics: dict[str, Any],
                           seed: int) -> Figure:
    """Rows of real and synthetic crops above their autoencoder reconstructions."""
    n = N_RECONSTRUCTIONS
    rs, rr = seeded_subset(len(source.images), n, seed), seeded_subset(len(real.images), n, seed + 1)
    rows = {"REAL": pixels(real.images[rr]).reshape(-1, *real.images.shape[1:]),
            "REAL recon.": arrays["recon_real"][rr],
            "SYNTHETIC": pixels(source.images[rs]).reshape(-1, *source.images.shape[1:]),
            "SYNTH. recon.": arrays["recon_synthetic"][rs]}
    rec = metrics["reconstruction"]
    return image_rows(rows, n=n, title=f"Autoencoder reconstructions: MSE real {rec['real_mse']:.4f}, "
                                       f"synthetic {rec['synthetic_mse']:.4f} ({rec['ratio']:.1f}x)")


def statistics_figure(arrays: dict[str, np.ndarray], st: dict[str, Any]) -> Figure:
    """SYNTHETIC crops and REAL cells on the two image statistics that tell them apart most: those the classifier
    on all statistics leans on most, or the two furthest apart when no single one carries the difference."""
    together = st["classifier"]
    if _leaned_on(together):
        x, y = list(together["without"])[:2]
        why = (f"the two the classifier on all {len(st['what'])} statistics leans on most (AUC {together['auc']:.3f} "
               f"together, {together['without'][x]:.3f} without {x})")
    else:
        x, y = list(st["sds_apart"])[:2]
        why = (f"the two furthest apart (pooled SDs); no single statistic carries the difference "
               f"(AUC {together['auc']:.3f} together)")
    names = list(st["what"])
    fig, ax = plt.subplots(figsize=(6.6, 5.4))
    for key, label, style in (("statistics_synthetic", "SYNTHETIC crops", {"s": 10, "alpha": 0.5, "color": "tab:blue"}),
                              ("statistics_real", "REAL cells", {"s": 18, "marker": "x", "color": "black",
                                                                 "linewidths": 0.8})):
        values = arrays[key]
        ax.scatter(values[:, names.index(x)], values[:, names.index(y)], label=f"{label} ({len(values)})", **style)
    ax.set_xlabel(textwrap.fill(f"{x}: {st['what'][x]}", 70), fontsize=8)
    ax.set_ylabel(textwrap.fill(f"{y}: {st['what'][y]}", 60), fontsize=8)
    ax.legend(fontsize=8, loc="best", framealpha=0.8)
    ax.set_title(textwrap.fill(f"Image statistics: {why}", 80), fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- Report
def build_report(metrics: dict[str, Any], figures: list[str], command: str) -> Report:
    """The report from ``metrics`` (JSON-ready) and the figures' names (the harness adds the configuration)."""
    d, dc = metrics["data"], metrics["domain_classifier"]
    rep = Report("Domain shift: SYNTHETIC training data vs REAL cells",
                 banner="Synthetic crops: generated by replearn (stages known). Real crops: microscope cells (no "
                        "labels); every stage shown for a real cell is a model's GUESS"
                        + (". The --real crops are marked SYNTHETIC in their file: this compares synthetic with "
                           "synthetic" if d["real"]["synthetic"] else ""))
    rep.heading("Data and model")
    rep.table(["set", "source", "crops", "size", "synthetic?"], [
        ["source (stages known)", d["synthetic"]["source"], d["synthetic"]["n"], d["size"],
         "yes" if d["synthetic"]["synthetic"] else "no"],
        ["target (real cells)", d["real"]["source"], d["real"]["n"], d["size"],
         "YES" if d["real"]["synthetic"] else "no"],
    ])
    m = metrics["model"]
    rep.bullets([f"model: {m['path']} -- {m['description']}",
                 f"trained on: {m['trained_on']}",
                 f"seed {metrics['seed']}; {metrics['environment']['machine']}"])
    rep.heading("How far apart are the two domains?")
    rep.text(metrics["sentence"])
    codes, pix = dc["codes"], dc["raw_pixels_pca"]
    st = metrics["image_statistics"]
    sc = st["classifier"]
    nn = metrics["nearest_neighbour"]
    rep.table(["representation", "domain classifier accuracy", "AUC", "n per domain"], [
        [f"model codes ({metrics['code_dim']}-D)", f"{codes['accuracy']:.3f} +- {codes['accuracy_std']:.3f}",
         f"{codes['auc']:.3f} +- {codes['auc_std']:.3f}", codes["n_per_domain"]],
        [f"raw pixels (PCA-{pix['n_components']})", f"{pix['accuracy']:.3f} +- {pix['accuracy_std']:.3f}",
         f"{pix['auc']:.3f} +- {pix['auc_std']:.3f}", pix["n_per_domain"]],
        [f"the {len(st['what'])} image statistics below, together", f"{sc['accuracy']:.3f} +- {sc['accuracy_std']:.3f}",
         f"{sc['auc']:.3f} +- {sc['auc_std']:.3f}", sc["n_per_domain"]],
    ])
    rep.bullets([
        f"domain classifier: {dc['method']}; +- is the standard deviation over the {codes['n_splits']} folds; "
        "0.5 = the domains cannot be told apart",
        f"nearest-neighbour distance (codes): real -> nearest synthetic {nn['target_to_source']:.3g}, synthetic -> "
        f"nearest other synthetic {nn['source_to_source']:.3g}, ratio {nn['ratio']:.2f}",
    ] + ([f"autoencoder reconstruction MSE: real {metrics['reconstruction']['real_mse']:.4f}, synthetic "
          f"{metrics['reconstruction']['synthetic_mse']:.4f} ({metrics['reconstruction']['ratio']:.1f}x); "
          f"{100 * metrics['reconstruction']['real_above_synthetic_p95']:.0f}% of real cells are reconstructed worse "
          "than 95% of synthetic crops"] if "reconstruction" in metrics else []))
    rep.heading("Simple image statistics of the two sets (what a domain classifier may key on)")
    rep.table(["statistic", "SYNTHETIC (mean +- SD over crops)", "real (mean +- SD)", "pooled SDs apart",
               "what it measures"],
              [[k, _mean_sd(st["synthetic"][k]), _mean_sd(st["real"][k]), f"{apart:.2f}", st["what"][k]]
               for k, apart in st["sds_apart"].items()])
    rep.text(f"Largest differences first; {st['scale']}. A statistic several SDs apart is a difference the "
             "synthetic preset does not reproduce (docs/real_cells.md). The statistics can also differ in how they "
             "go together while none is far apart alone: the same domain classifier on all of them tells the sets "
             f"apart with AUC {sc['auc']:.3f} (table above); {_leans_on(sc)}.")
    rep.heading("Which stage would the model say? (a GUESS for real cells)")
    kg = metrics["knn_guess"]
    rows = [["SYNTHETIC crops: true stages"] + [f"{v:.2f}" for v in kg["source_fractions"]],
            [f"REAL cells: {kg['k']}-NN guess"] + [f"{v:.2f}" for v in kg["fractions"]]]
    if "classifier" in metrics:
        rows.append(["REAL cells: classifier guess"] + [f"{v:.2f}" for v in metrics["classifier"]["real"]["fractions"]])
    rep.table(["stages of"] + metrics["class_names"], rows)
    rep.bullets(_guess_notes(metrics))
    rep.heading("Figures")
    for name in figures:
        rep.figure(name, CAPTIONS[name].format(how=metrics["embedding"]["how"]))
    rep.heading("Reading it")
    rep.text("When the domain classifier is near 0.5 and the nearest-neighbour ratio near 1, the real cells fall where "
             "synthetic cells of some stage lie, and the model's stage regions may carry over (still unverified "
             "without labels). When it is near 1.0, the model has never seen anything like the real cells: its "
             "guesses are extrapolations, however confident. Label some real cells (replearn crops --labels) to "
             "measure.")
    rep.code(command)
    return rep


def _guess_notes(metrics: dict[str, Any]) -> list[str]:
    """What the stage guesses do and do not say."""
    kg = metrics["knn_guess"]
    notes = [f"the {kg['k']}-NN's cross-validated accuracy on the synthetic codes is "
             f"{kg['source_cv_accuracy']:.3f}: how well the codes separate stages where labels exist, "
             "not how right the guesses for real cells are" if kg["source_cv_accuracy"] is not None else
             "too few synthetic crops per stage for a cross-validated k-NN accuracy"]
    if "classifier" in metrics:
        c = metrics["classifier"]
        notes.append(f"classifier: accuracy {c['synthetic']['accuracy']:.3f} on the synthetic crops, mean confidence "
                     f"{c['synthetic']['mean_confidence']:.3f} there and {c['real']['mean_confidence']:.3f} on the "
                     "real cells (confidence is not correctness)")
        if "labelled_accuracy" in c["real"]:
            notes.append(f"classifier accuracy on the {kg['real_labelled_n']} labelled real crops: "
                         f"{c['real']['labelled_accuracy']:.3f}")
    if "real_labelled_accuracy" in kg:
        notes.append(f"k-NN accuracy on the {kg['real_labelled_n']} labelled real crops: "
                     f"{kg['real_labelled_accuracy']:.3f}")
    return notes


def command_line(cfg: Any) -> str:
    """The command that reproduces this run (for the report)."""
    parts = ["replearn domain", f"--model {cfg.model}", f"--real {cfg.real}"]
    if cfg.synthetic:
        parts.append(f"--synthetic {cfg.synthetic}")
    if cfg.preset:
        parts.append(f"--preset {cfg.preset}")
    if cfg.n_synthetic != (QUICK_SYNTHETIC if cfg.quick else N_SYNTHETIC):
        parts.append(f"--n-synthetic {cfg.n_synthetic}")
    parts += [f"--method {cfg.method}", f"--seed {cfg.seed}"]
    if cfg.layer != "features":
        parts.append(f"--layer {cfg.layer}")
    if cfg.k != K_NEIGHBOURS:
        parts.append(f"--k {cfg.k}")
    if cfg.quick:
        parts.append("--quick")
    return " ".join(parts)


def summary(metrics: dict[str, Any], report: Path | None) -> str:
    """The closing lines: the headline numbers, each stage GUESS marked as such."""
    codes, pix = metrics["domain_classifier"]["codes"], metrics["domain_classifier"]["raw_pixels_pca"]
    names = metrics["class_names"]
    lines = [f"domain classifier (real vs SYNTHETIC, 0.5 = no shift): codes accuracy {codes['accuracy']:.3f} "
             f"AUC {codes['auc']:.3f}; raw pixels accuracy {pix['accuracy']:.3f} AUC {pix['auc']:.3f}",
             f"nearest-synthetic distance ratio (real / synthetic): {metrics['nearest_neighbour']['ratio']:.2f}",
             f"stage GUESS for the real cells ({metrics['k']}-NN on synthetic codes, not ground truth): "
             + _fractions(names, metrics["knn_guess"]["fractions"])]
    if "classifier" in metrics:
        lines.append("stage GUESS of the classifier for the real cells: "
                     + _fractions(names, metrics["classifier"]["real"]["fractions"]))
    apart = list(metrics["image_statistics"]["sds_apart"].items())[:3]
    sc = metrics["image_statistics"]["classifier"]
    lines.append("image statistics furthest apart (pooled SDs; table in the report): "
                 + ", ".join(f"{k} {v:.1f}" for k, v in apart)
                 + f"; all together tell the sets apart with AUC {sc['auc']:.3f} ({_leans_on(sc)})")
    lines.append(metrics["sentence"])
    if report is not None:
        lines.append(f"report: {report}")
    return "\n".join(lines)


def _leaned_on(together: dict[str, Any]) -> str | None:
    """The statistic the classifier on all statistics leans on most, when leaving it out lowers the AUC by at least
    :data:`LEAN_DROP`; else None (no single statistic carries the difference)."""
    lean, without = next(iter(together["without"].items()))
    return lean if together["auc"] - without >= LEAN_DROP else None


def _leans_on(together: dict[str, Any]) -> str:
    """In words: the AUC without the statistic the classifier on all statistics leans on most (:func:`_leaned_on`)."""
    lean, without = next(iter(together["without"].items()))
    if _leaned_on(together) is None:
        return f"without any one of them, {without:.3f} or more: no single statistic carries the difference"
    return f"without {lean}, the one it leans on most, {without:.3f}"


def _mean_sd(value: dict[str, float]) -> str:
    return f"{value['mean']:.4g} +- {value['sd']:.3g}"


def _fractions(names: list[str], fractions: list[float]) -> str:
    return ", ".join(f"{n.split()[0]}: {v:.2f}" for n, v in zip(names, fractions))
