"""What ``replearn assignment`` shows: the figures, the report and the closing lines.

The report is assembled from ``metrics.json`` alone (plus the config and the
figure files): every number shown comes from the metrics dict (formatted with
:func:`fmt`), so a test can check the report against ``metrics.json``. It reads
like the experimental part of a hand-in: data, protocol, the three tasks, one
results table, the comparisons in words, the 2-D view, the resolved config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from replearn.data import AssignmentData, to_tensor
from replearn.evaluate import EMBEDDING_NOTES, Report, embed_2d
from replearn.evaluate import figures as figs
from replearn.evaluate.protocol import Split
from replearn.workflows._assignment_grid import to_toml
from replearn.workflows._assignment_models import CnnResult, Representation, Stage, pixels
from replearn.workflows._run import Result

SYNTHETIC_BANNER = (
    "SYNTHETIC DATA: every result below comes from replearn's built-in synthetic S. aureus crops "
    "(replearn.data.synthetic_aureus), not from real microscopy images."
)


def fmt(mean: float, ci: float) -> str:
    """``mean ± half-width`` with 3 decimals, as every table of the report shows it."""
    return f"{mean:.3f} ± {ci:.3f}"


EMBEDDING_HOW = {
    "tsne": "t-SNE (perplexity 30, PCA initialisation) of all labelled crops at once. It keeps neighbourhoods, "
            "not distances: the size of a group and the gaps between groups mean little; look at which stages mix.",
    "isomap": "ISOMAP (10 neighbours) of all labelled crops: distances along the neighbourhood graph, unrolled to 2-D.",
    "pca": "PCA of all labelled crops: the two directions of largest variance (a linear view).",
}


def embedding_note(method: str) -> str:
    """How the 2-D view was made (and how to read it)."""
    return EMBEDDING_HOW.get(method, EMBEDDING_NOTES.get(method, "")) + (
        " Panels of 2-D codes show the code itself, without any embedding."
    )


def cnn_text(config: dict[str, Any], n_classes: int) -> str:
    """Section (a)'s description of the CNN, its training and its augmentation, from the resolved config."""
    c, a = config["cnn"], config["augment"]
    if c["spec"]:
        arch = (f"A CNN built from the config's layer spec ({'; '.join(c['spec'])}; the grid's depth, width and "
                f"dropout are not used), softmax over {n_classes} stages")
    else:
        dropout = ", ".join(f"{v:g}" for v in c["dropout"])
        arch = (f"A small CNN (blocks of 3x3 convolution, ReLU, batch normalisation and 2x2 max-pooling with widths "
                f"doubling, global average pooling, dense {c['dense']}, dropout {dropout}, softmax over "
                f"{n_classes} stages)")
    text = (f"{arch}, trained for {c['epochs']} epochs with {c['optimizer']} (learning rate {c['lr']:g}, schedule "
            f"{c['schedule']}, weight decay {c['weight_decay']:g}, batch {c['batch_size']}).")
    if True not in c["augment"]:
        return text + " No augmentation ([cnn] augment = [false])."
    turns = {(True, True): "random flips and 90-degree rotations", (True, False): "random mirror flips",
             (False, True): "random 90-degree rotations"}.get((a["flips"], a["rot90"]))
    parts = [f"{turns} (a cell has no preferred orientation, and neither interpolates pixels)"] if turns else []
    if a["scale"] or a["offset"]:
        parts.append(f"small brightness changes (gain ±{a['scale']:g}, offset ±{a['offset']:g})")
    if not parts:
        return text + " Augmentation (points marked +aug) is on, but [augment] turns every change off."
    return text + " Augmentation (points marked +aug) suits cells: " + " and ".join(parts) + "."


def _row_metrics(r: dict[str, Any]) -> list[str]:
    return [fmt(r["accuracy_mean"], r["accuracy_ci"]), fmt(r["macro_f1_mean"], r["macro_f1_ci"]), str(r["runs"])]


def build_report(metrics: dict[str, Any], config: dict[str, Any], figures: dict[str, str]) -> Report:
    """The report for one run of ``replearn assignment`` (``figures``: key -> file name in the run folder)."""
    d, p = metrics["data"], metrics["protocol"]
    synthetic = metrics["synthetic"]
    rep = Report("Assignment 1: S. aureus division stages from few labels",
                 banner=SYNTHETIC_BANNER if synthetic else "")

    # ---------------------------------------------------------------- summary
    rep.heading("Summary")
    items = []
    for key, where, what in (("cnn", "cnn", "CNN"), ("probe", "probes", "simple classifier (on codes or a baseline)")):
        name = metrics["best"][key]
        if name:
            r = metrics[where][name]
            items.append(f"Best {what}: {name}, validation accuracy {fmt(r['accuracy_mean'], r['accuracy_ci'])} "
                         f"(mean ± 95% CI over {r['runs']} splits), macro-F1 {fmt(r['macro_f1_mean'], r['macro_f1_ci'])}.")
    items.append(f"Always predicting the largest class would score {p['chance_accuracy']:.3f}.")
    if metrics["autoencoder"]["skipped"]:
        items.append(f"Note: {metrics['autoencoder']['skipped']}.")
    rep.bullets(items)

    # ---------------------------------------------------------------- data
    rep.heading("Data")
    kind = "synthetic crops generated by replearn" if synthetic else "the given crops"
    rep.text(f"Source: {d['source']} ({kind}). {d['n_labelled']} labelled and {d['n_unlabelled']} unlabelled "
             f"{d['image_size'][0]}x{d['image_size'][1]} grayscale crops ({d['pixel_type']}), scaled to [0, 1].")
    rep.table(["class", "labelled crops"], [[n, c] for n, c in zip(d["class_names"], d["class_counts"])]
              + [["total", d["n_labelled"]]])
    if "examples" in figures:
        rep.figure(figures["examples"], "The first labelled crops of each stage.")

    # ---------------------------------------------------------------- protocol
    rep.heading("Protocol")
    quick = " This was a --quick run (small data, few epochs): its numbers are a smoke test, not results." \
        if p["quick"] else ""
    rep.text(
        f"Every model is trained on {p['n_train']} labelled crops and validated on {p['n_val']}, on the same "
        f"{p['repeats']} seeded stratified splits (split seed {p['seed']}; training seed {p['seed']} + split number), "
        "so every comparison is paired. A single validation set of this size gives roughly ±5% of noise on "
        "accuracy, hence the repeats; tables give the mean and the 95% t-interval of the mean over the splits. "
        "CNNs are scored after their last epoch (no best-epoch picking on the validation set). The best model of "
        "each kind is picked on the same validation splits that score it, so its number is slightly optimistic; "
        f"with {d['n_labelled']} labelled crops there is no separate test set." + quick
    )

    # ---------------------------------------------------------------- (a) CNN
    rep.heading("(a) CNN classifier on the labelled crops")
    rep.text(cnn_text(config, len(d["class_names"])))
    rows = []
    for name, r in metrics["cnn"].items():
        prm = r["params"]
        arch = " ".join(prm["spec"]) if "spec" in prm else f"depth {prm['depth']}, width {prm['width']}, dropout {prm['dropout']:g}"
        rows.append([name, arch, "yes" if prm["augment"] else "no", f"{r['n_params']:,}", *_row_metrics(r),
                     f"{r['seconds']:.1f}"])
    rep.table(["model", "architecture", "augmentation", "parameters", "accuracy", "macro-F1", "splits",
               "train time (s)"], rows)
    if "cnn_curves" in figures:
        rep.figure(figures["cnn_curves"], "Training and validation accuracy per epoch (mean over the splits).")
    if "cnn_confusion" in figures:
        rep.figure(figures["cnn_confusion"], f"Confusion matrix of the best CNN ({metrics['best']['cnn']}).")

    # ---------------------------------------------------------------- (b) autoencoder
    rep.heading("(b) Convolutional autoencoder on the unlabelled crops")
    ae = metrics["autoencoder"]
    if ae["skipped"]:
        rep.text(f"Skipped: {ae['skipped']}.")
    else:
        a = config["autoencoder"]
        blocks = " | ".join(", ".join(str(w) for w in b) for b in a["blocks"])
        rep.text(
            f"The lecture's convolutional autoencoder for {d['image_size'][0]}x{d['image_size'][1]} crops: encoder "
            f"blocks of convolutions ({blocks}) each ending in 2x2 max-pooling, a linear dense bottleneck "
            f"(the code), and the mirror image as decoder ending in a sigmoid. Trained on the {d['n_unlabelled']} "
            f"unlabelled crops for {a['epochs']} epochs ({a['loss']} loss, Adam, one-cycle learning rate "
            f"{a['lr']:g}, batch {a['batch_size']}); the {d['n_labelled']} labelled crops are its validation set."
        )
        rep.table(
            ["autoencoder", "code size", "parameters", "epochs", "val loss (last epoch)", "val MSE", "val BCE",
             "train time (s)"],
            [[n, m["code_dim"], f"{m['n_params']:,}", m["epochs"],
              f"{m['history']['val_loss'][-1]:.4f}" if m["history"].get("val_loss") else "-",
              f"{m['val_mse']:.4f}", f"{m['val_bce']:.4f}", f"{m['seconds']:.1f}"]
             for n, m in ae["models"].items()],
        )
        if "ae_curves" in figures:
            rep.figure(figures["ae_curves"], "Reconstruction loss per epoch (training: unlabelled; validation: labelled).")
        if "reconstructions" in figures:
            rep.figure(figures["reconstructions"], "Validation crops (top) and their reconstructions.")

    # ---------------------------------------------------------------- beyond the lecture: SimCLR
    ssl = metrics.get("ssl", {"skipped": "not run", "models": {}})
    if ssl["models"]:
        c = config["ssl"]
        rep.heading("(b+) Beyond the lecture: self-supervised pretraining (SimCLR) on the unlabelled crops")
        rep.text(
            f"A small CNN ({c['depth']} blocks of 3x3 convolution, ReLU, batch normalisation and 2x2 max-pooling, "
            f"widths doubling from {c['width']}, global average pooling) is trained without labels on the "
            f"{d['n_unlabelled']} unlabelled crops with the SimCLR objective: two random views of every crop (a "
            f"random symmetry of the square, a brightness change and a shift of up to {c['shift']} px) must be "
            f"recognised as the same crop among the other crops of the batch (NT-Xent loss, temperature "
            f"{c['temperature']:g}, batch {c['batch_size']}, projection head of {c['proj_dim']} outputs, dropped "
            f"afterwards). {c['epochs']} epochs, Adam, one-cycle learning rate {c['lr']:g}. The simple classifiers "
            "of (c) run on its pooled features (rows 'SimCLR features')."
        )
        rep.table(["encoder", "features", "parameters", "epochs", "NT-Xent loss (first -> last epoch)",
                   "train time (s)"],
                  [[n, m["feature_dim"], f"{m['n_params']:,}", m["epochs"],
                    f"{m['history']['loss'][0]:.3f} -> {m['history']['loss'][-1]:.3f}", f"{m['seconds']:.1f}"]
                   for n, m in ssl["models"].items()])

    # ---------------------------------------------------------------- (c) probes
    rep.heading("(c) Simple classifiers on the encoded crops")
    rep.text(
        "Each classifier standardises its inputs, then fits on the codes of the training crops of a split and is "
        "scored on that split's validation crops: logistic regression, linear and RBF support vector machines, "
        "k nearest neighbours and a small MLP (scikit-learn). Baselines on the same splits: the same classifiers "
        "on PCA codes of the same sizes (PCA fitted on the unlabelled crops, or on each split's training crops "
        "when there are none) and on the raw pixels."
    )
    rows = [[n, r["representation"], *_row_metrics(r)] for n, r in metrics["probes"].items()]
    rep.table(["classifier", "representation", "accuracy", "macro-F1", "splits"], rows)
    if metrics["probe_convergence_warnings"]:
        rep.text(f"{metrics['probe_convergence_warnings']} probe fits stopped at their iteration limit "
                 "before converging (scikit-learn ConvergenceWarning); their scores are those of the stopped fit.")
    if "probe_confusion" in figures:
        rep.figure(figures["probe_confusion"], f"Confusion matrix of the best simple classifier ({metrics['best']['probe']}).")

    # ---------------------------------------------------------------- results
    rep.heading("Results: every model, best first")
    rep.table(["model", "kind", "representation", "accuracy", "macro-F1", "splits"],
              [[r["name"], r["kind"], r["representation"], *_row_metrics(r)] for r in metrics["results"]])

    rep.heading("Comparisons")
    rep.bullets([f"{c['title']}: {c['sentence']}" for c in metrics["comparisons"]] or ["No comparison possible."])

    # ---------------------------------------------------------------- 2-D view
    if "embedding" in figures:
        rep.heading("The labelled crops in 2-D, coloured by stage")
        rep.figure(figures["embedding"], "2-D views of the codes and of the raw pixels, coloured by stage.")
        rep.text(metrics.get("embedding", {}).get("note", ""))

    # ---------------------------------------------------------------- config and run
    rep.heading("Configuration (resolved)")
    rep.text("Re-run with: replearn assignment --config grid.toml (this file is saved in the run folder).")
    rep.code(to_toml(config))
    rep.heading("Run")
    t, env = metrics["timing"], metrics["environment"]
    parts = [f"{k.replace('_s', '')} {v:.1f} s" for k, v in t.items()]
    bf16 = [name for name, key in (("CNNs", "bf16_cnn"), ("autoencoders", "bf16_autoencoder"),
                                   ("the SimCLR encoder", "bf16_ssl")) if env.get(key)]
    rep.text(f"Wall time: {', '.join(parts)}. replearn {env['replearn']}, torch {env['torch']}, Python "
             f"{env['python']}, device {env['device']}, {env['torch_threads']} torch threads; bfloat16 autocast for "
             f"{' and '.join(bf16) if bf16 else 'nothing (float32 throughout)'}.")
    saved = metrics["saved"]
    files = []
    if saved["cnn"]:
        files.append(f"model.safetensors: the best CNN ({saved['cnn']['name']}), trained on split 0; "
                     "use it with: replearn predict --model RUN_FOLDER CROPS")
    files += [f"{f}: {n}" for n, f in saved["autoencoders"].items()]
    files += [f"{f}: the {n} encoder (features of the pooling layer)" for n, f in saved.get("ssl", {}).items()]
    files += ["metrics.json: every number of this report", "config.json, grid.toml: the resolved configuration"]
    rep.bullets(files)
    return rep


# =============================================================================================
# Figures
# =============================================================================================
def draw_figures(result: Result, data: AssignmentData, splits: list[Split], cnn: dict[str, CnnResult], ae: Stage,
                 reps: list[Representation], metrics: dict[str, Any], config: dict[str, Any],
                 seed: int) -> dict[str, str]:
    """The report's figures, handed to ``result``; returns key -> file name (``metrics`` gains ``embedding``)."""
    names = data.class_names
    tag = " (SYNTHETIC data)" if data.synthetic else ""
    files: dict[str, str] = {}

    def add(key: str, name: str, fig: Any) -> None:
        files[key] = f"figures/{name}"
        result.figure(files[key], fig)

    # Examples of each stage.
    per = 8
    idx = np.concatenate([np.flatnonzero(data.labels == c)[:per] for c in range(data.n_classes)])
    imgs = to_tensor(data.labelled[idx])[:, 0].numpy()
    titles = [names[int(c)].split()[0] if names[int(c)] else str(c) for c in data.labels[idx]]
    add("examples", "examples.png", figs.montage(imgs, ncols=per, titles=[f"stage {t}" for t in titles],
                                                 title=f"Labelled crops by stage{tag}"))

    # Learning curves: the best CNN with and without augmentation (mean over repeats).
    best = metrics["best"]["cnn"]
    if best is not None:
        point = cnn[best].point
        shown = [n for n in dict.fromkeys([best, point.twin(True).name, point.twin(False).name]) if n in cnn]
        hist = {n: metrics["cnn"][n]["history"] for n in shown}
        add("cnn_curves", "cnn_learning_curves.png", figs.learning_curves(
            hist, ("accuracy", "val_accuracy"), title=f"CNN accuracy per epoch, mean of {len(splits)} splits{tag}"))
        add("cnn_confusion", "confusion_cnn.png", figs.confusion_figure(
            metrics["cnn"][best]["confusion"], names, f"{best}: validation, summed over {len(splits)} splits{tag}"))
    best_probe = metrics["best"]["probe"]
    if best_probe is not None:
        add("probe_confusion", "confusion_probe.png", figs.confusion_figure(
            metrics["probes"][best_probe]["confusion"], names,
            f"{best_probe}: validation, summed over {len(splits)} splits{tag}"))

    if ae.models:
        hist = {n: m["history"] for n, m in metrics["autoencoder"]["models"].items()}
        add("ae_curves", "autoencoder_learning_curves.png", figs.learning_curves(
            hist, ("loss", "val_loss"), title=f"Autoencoder reconstruction loss per epoch{tag}"))
        va = splits[0][1]
        pick = np.concatenate([va[data.labels[va] == c][:4] for c in range(data.n_classes)])[:10]
        rows = {"original": to_tensor(data.labelled[pick])[:, 0].numpy()}
        rows.update({n: m.recon[pick] for n, m in ae.models.items()})
        add("reconstructions", "reconstructions.png", figs.image_rows(
            rows, n=len(pick), title=f"Validation crops and their reconstructions{tag}"))

    # The 2-D view of the codes, coloured by stage.
    method = config["report"]["embedding"]
    label = {"tsne": "t-SNE", "isomap": "ISOMAP", "pca": "PCA"}[method]
    panels: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    code_reps = [r for r in reps if r.kind in ("autoencoder", "pca")]
    if code_reps:
        panels[f"{code_reps[0].name}, {label}"] = (embed_2d(method, code_reps[0].codes[0], seed=seed)[0], data.labels)
    for rep in [r for r in reps if r.kind == "ssl"]:
        panels[f"{rep.name}, {label}"] = (embed_2d(method, rep.codes[0], seed=seed)[0], data.labels)
    for name, m in ae.models.items():
        if m.code_dim == 2:
            panels[f"{name} codes (the 2-D code itself)"] = (m.codes, data.labels)
    panels[f"raw pixels, {label}"] = (embed_2d(method, pixels(data.labelled), seed=seed)[0], data.labels)
    add("embedding", "embedding_2d.png", figs.embeddings_figure(
        panels, names, title=f"The {len(data.labels)} labelled crops in 2-D{tag}"))
    metrics["embedding"] = {"method": method, "panels": list(panels), "note": embedding_note(method)}
    return files


def summary(metrics: dict[str, Any], out: Path | None) -> str:
    """The closing lines: the headline numbers and where the report is."""
    lines = []
    for key in ("cnn", "probe"):
        name = metrics["best"][key]
        if name:
            r = (metrics["cnn"] if key == "cnn" else metrics["probes"])[name]
            lines.append(f"best {key}: {name}: accuracy {r['accuracy_mean']:.3f} +- {r['accuracy_ci']:.3f} "
                         f"(95% CI, {r['runs']} splits)")
    syn = " -- made from SYNTHETIC data" if metrics["synthetic"] else ""
    lines.append(f"Report: {Path(out or '.') / 'report.html'}{syn}")
    return "\n".join(lines)
