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


FEW_SPLITS = 3
"""With this many splits or fewer, a 95% interval is too wide to rank models: the tables show the mean only."""


def fmt(mean: float, ci: float, runs: int | None = None) -> str:
    """``mean ± half-width`` with 3 decimals, as every table of the report shows it; with ``runs`` <=
    :data:`FEW_SPLITS` splits, the mean and ``(few splits)``: no interval."""
    if runs is not None and runs <= FEW_SPLITS:
        return f"{mean:.3f} (few splits)"
    return f"{mean:.3f} ± {ci:.3f}"


def stage_recall(recall: list[float]) -> str:
    """Per-stage recall, e.g. ``0.91 / 0.70 / 0.65``."""
    return " / ".join("-" if r != r else f"{r:.2f}" for r in recall)


TERMS = [
    "**Accuracy**: the share of held-out crops whose stage was predicted right. **Macro-F1**: the F1 score "
    "(balance of precision and recall) of each stage, averaged with equal weight per stage, so a rare stage "
    "counts as much as a common one. **Recall per stage**: the share of the crops of each stage that were "
    "found (stage 0 / 1 / 2, from the confusion matrix summed over the splits).",
    "**± (95% interval)**: the mean over the splits plus or minus the half-width of its 95% t-interval; "
    "two models whose intervals overlap a lot are not shown to differ. The comparisons use a paired t-test "
    "over the same splits, which is sharper than looking at overlaps.",
    "**Probe** (simple classifier): a classical classifier (logistic regression, SVM, k-NN, small MLP) trained "
    "on fixed codes of the crops (autoencoder codes, SimCLR features, PCA codes or raw pixels). **Baseline**: "
    "a model that learns nothing from unlabelled crops; a learned model must beat the best one to be worth it.",
    "**Grid names**: `cnn d4 w16 p0.25 +aug` is a CNN of 4 convolution blocks (d4), 16 filters in the first "
    "(w16, doubling per block), dropout 0.25 (p0.25), trained with augmentation (+aug); `+sim2real widefield`: "
    "first trained on generated crops of the built-in "
    "generator's widefield preset (their stages come for free), then on the given crops; `semisup ...`: the same "
    "CNN trained semi-supervised on the labelled and the unlabelled crops; `simclr_ft`: the SimCLR encoder with a "
    "new head, fine-tuned on the labelled crops. **TTA** (test-time "
    "augmentation): every prediction averages the model's scores over the 8 turns and mirror images of the crop.",
    "**Nested selection**: on each split, every model is also trained on three quarters of that split's "
    "training crops and scored on the last quarter; the best of those inner scores chooses the model, and "
    "the choice is then scored on the split's held-out crops, which took no part in choosing it. "
    "**Out-of-fold**: in cross-validation every crop is predicted once per repeat, by a model that did not see it.",
]
"""Each term of the report, explained once."""


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
    presets = [v for v in c.get("pretrain", ["none"]) if v != "none"]
    if presets:
        text += (f" Sim-to-real rows (+sim2real <preset>) first train the same network for {c['pretrain_epochs']} "
                 f"epochs on {c['pretrain_n']} SYNTHETIC crops of the {' / '.join(presets)} preset with their stages, "
                 "then fine-tune all of it on the given crops.")
    text += semisup_text(config)
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


def semisup_text(config: dict[str, Any]) -> str:
    """How the grid's semi-supervised (``semisup``) and fine-tuned (``simclr_ft``) rows were trained ('' if none)."""
    methods, s = config["cnn"].get("method", ["cnn"]), config["semisup"]
    text = ""
    if "semisup" in methods:
        text += (" Semi-supervised rows (semisup) train the same network on the same labelled crops and, in every "
                 f"step, on {s['ratio']} times as many unlabelled crops (FixMatch-style): a weakly changed copy of "
                 f"each unlabelled crop (a turn or mirror image) gives a pseudo-label where the network is at least "
                 f"{s['threshold']:g} confident, and a strongly changed copy (turns, gain and offset, shifts, pixel "
                 f"noise; strength {s['strength']:g}) is trained to predict it. They never see a split's validation "
                 "crops, which are labelled crops, not unlabelled ones"
                 + ("; before the threshold, the network's stage probabilities on unlabelled crops are pulled "
                    "towards the stage shares of the labelled crops (distribution alignment), so that no stage is "
                    "pseudo-labelled far more often than the labelled crops make likely" if s["align"] else "")
                 + (f"; predictions use a moving average of the weights (decay {s['ema']:g})" if s["ema"] else "")
                 + (f"; they train for {s['steps_scale']} times the supervised rows' steps ({s['steps_scale']} x "
                    f"{config['cnn']['epochs']} epochs), so part of any gain may come from the longer training"
                    if s["steps_scale"] > 1 else "")
                 + ". The comparison with the supervised row of the same network is in the paired tests below.")
    if "simclr_ft" in methods:
        text += (" The simclr_ft rows put a new head (dense, ReLU, dense) on the (b+) SimCLR encoder and train the "
                 f"whole network on the labelled crops, the encoder at {s['encoder_lr_scale']:g} times the learning "
                 "rate of the head (its features should move less than the new head)"
                 + (", FixMatch-style on the unlabelled crops too"
                    + (f", for {s['steps_scale']} x {config['cnn']['epochs']} epochs" if s["steps_scale"] > 1 else "")
                    if s["fine_tune_unlabelled"] else "")
                 + "; their models are not saved (replearn predict rebuilds the small CNN only).")
    return text


def _row_metrics(r: dict[str, Any]) -> list[str]:
    return [fmt(r["accuracy_mean"], r["accuracy_ci"], r["runs"]), fmt(r["macro_f1_mean"], r["macro_f1_ci"], r["runs"]),
            str(r["runs"])]


def _seen(models: dict[str, Any]) -> str:
    """How many crops an encoder saw, e.g. "73 unlabelled crops + 2,000 SYNTHETIC generated ones (2,073 images)"."""
    seen = next(iter(models.values())).get("seen") or {}
    unl, gen = seen.get("unlabelled", 0), seen.get("generated", 0)
    if not gen:
        return f"the {unl:,} unlabelled crops"
    if not unl:
        return f"{gen:,} SYNTHETIC crops from the built-in generator (the data has no unlabelled crops)"
    return (f"{unl:,} unlabelled crops + {gen:,} SYNTHETIC crops from the built-in generator ({unl + gen:,} images; "
            "few unlabelled crops were given, so generated ones were added)")


def _flag(name: str, metrics: dict[str, Any]) -> str:
    return " ⚠ not better than the majority class" if name in metrics["verdict"]["not_better_than_majority"] else ""


def summary_items(metrics: dict[str, Any]) -> list[str]:
    """The summary's bullets: the recommended model and why, the baselines, the rows at chance, the caveats."""
    v, p = metrics["verdict"], metrics["protocol"]
    sel, rec = v["selection"], v["recommended"]
    n = len(sel["chosen"])
    others = ", ".join(f"{k} ({c})" for k, c in sel["times_chosen"].items() if k != rec)
    items = [
        f"Recommended model: **{rec}**. Why: on each of the {n} splits every model was trained on that split's "
        f"training crops only and the one with the best accuracy on a held-out part of them was chosen (nested "
        f"selection); {rec} was chosen on {sel['times_chosen'][rec]} of {n} splits"
        + (f" (also chosen: {others})" if others else "") + ". The accuracy of this choice on the crops it never "
        f"saw is {fmt(sel['accuracy_mean'], sel['accuracy_ci'], sel['runs'])} (macro-F1 "
        f"{fmt(sel['macro_f1_mean'], sel['macro_f1_ci'], sel['runs'])}; recall per stage "
        f"{stage_recall(sel['recall'])}): the number to quote.",
    ]
    by_title = {c["title"]: c["sentence"] for c in metrics["comparisons"]}
    base = v["best_baseline"]
    if base:
        b = metrics["probes"][base]
        items.append(f"Best baseline: {base}, {fmt(b['accuracy_mean'], b['accuracy_ci'], b['runs'])}.")
        if v["learned_beating_baseline"]:
            items.append(f"Learned models that beat it (paired t-test over the splits, p < 0.05): "
                         f"{', '.join(v['learned_beating_baseline'])}.")
        else:
            items.append(f"No learned model (a CNN, or a simple classifier on autoencoder, SimCLR or PCA codes) beats "
                         f"the best baseline: {by_title.get('Best learned model vs best baseline', '')} With these "
                         f"crops, {base} is as good as anything learned; more labelled crops may change that.")
    fv = v.get("features_vs_pixels") or {}
    if fv.get("features") and fv.get("pixels"):
        f, r = metrics["probes"][fv["features"]], metrics["probes"][fv["pixels"]]
        verdict = "beats" if fv["beats"] else "does not beat"
        items.append(f"Representation learning: the best classifier on learned features, {fv['features']} "
                     f"({f['accuracy_mean']:.3f}), {verdict} the same classifier on raw pixels ({r['accuracy_mean']:.3f}) "
                     "in a paired t-test over the splits (p < 0.05 needed)"
                     + ("." if fv["beats"] else ": on these crops the autoencoder and SimCLR codes add nothing "
                        "over the pixels."))
    flagged = v["not_better_than_majority"]
    items.append(f"Always guessing the largest stage scores {p['chance_accuracy']:.3f}. "
                 + (f"Not shown better than that (⚠ in the tables; a paired t-test over the splits, or with 3 "
                    f"splits or fewer the mean): {', '.join(flagged)}." if flagged else
                    "Every model is better than that (paired t-test over the splits)."))
    if p["splits"] <= FEW_SPLITS:
        items.append(f"Only {p['splits']} splits: the intervals are too wide to rank models; read the means as a hint.")
    if metrics["synthetic"]:
        items.append("These crops are SYNTHETIC: the numbers say nothing about real cells.")
    if metrics["autoencoder"]["skipped"]:
        items.append(f"Note: {metrics['autoencoder']['skipped']}.")
    return items


def build_report(metrics: dict[str, Any], config: dict[str, Any], figures: dict[str, str]) -> Report:
    """The report for one run of ``replearn assignment`` (``figures``: key -> file name in the run folder)."""
    d, p = metrics["data"], metrics["protocol"]
    synthetic = metrics["synthetic"]
    rep = Report("Assignment 1: S. aureus division stages from few labels",
                 banner=SYNTHETIC_BANNER if synthetic else "")

    # ---------------------------------------------------------------- summary
    rep.heading("Summary")
    rep.bullets(summary_items(metrics))
    rep.heading("How to read this report")
    rep.bullets(TERMS)
    rep.text("To explore the features interactively (each crop on hover, a selection saved as CSV), run "
             "`replearn explore RUN --out RUN/explore.html` with this run's folder as RUN and open explore.html.")

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
        f"Why this protocol: {p['reason']}. {p['description'][0].upper() + p['description'][1:]}, about "
        f"{p['n_train']} training and {p['n_val']} held-out crops each, split seed {p['seed']}; training seed "
        f"{p['seed']} + split number. Every model, CNN, probe or baseline, is trained and scored on the same "
        "splits, so every comparison is paired. Tables give the mean over the splits and its 95% t-interval "
        "(the splits of a cross-validation share training crops, so the interval is somewhat optimistic). "
        "CNNs are scored after their last epoch (no best-epoch picking on held-out crops). The recommended "
        "model is chosen by nested selection (see above), so its accuracy is not flattered by the choice; the "
        "'best' rows of the tables, picked on the same held-out crops that score them, are slightly optimistic."
        + (f" Note: {p['note']}." if p["note"] else "") + quick
    )
    if p["splits"] <= FEW_SPLITS:
        rep.text(f"With only {p['splits']} splits a 95% interval is wider than the differences between models "
                 "(often wider than 0-1), so the tables show means only: they cannot rank models. Use more "
                 "repeats ([data] repeats or cv_repeats) for a ranking.")

    # ---------------------------------------------------------------- (a) CNN
    rep.heading("(a) CNN classifier on the labelled crops")
    rep.text(cnn_text(config, len(d["class_names"])))
    rows = []
    for name, r in metrics["cnn"].items():
        prm = r["params"]
        if prm.get("method") == "simclr_ft":
            arch = "SimCLR encoder + new head, fine-tuned"
        else:
            arch = " ".join(prm["spec"]) if "spec" in prm else f"depth {prm['depth']}, width {prm['width']}, dropout {prm['dropout']:g}"
            arch += " (semi-supervised)" if prm.get("method") == "semisup" else ""
        rows.append([name + _flag(name, metrics), arch, "yes" if prm["augment"] else "no", f"{r['n_params']:,}",
                     *_row_metrics(r), stage_recall(r["recall"]), f"{r['seconds']:.1f}"])
    rep.table(["model", "architecture", "augmentation", "parameters", "accuracy", "macro-F1", "splits",
               "recall per stage", "train time (s)"], rows)
    saved = metrics["saved"]["cnn"]
    if saved:
        rep.text(f"The CNN that `replearn predict` uses is {saved['name']} (chosen among the CNNs by nested selection), "
                 f"saved as an ensemble of its {len(saved['ensemble'])} models of the first splits (the fold "
                 "ensemble): predict averages their class probabilities"
                 + (" over the 8 symmetries of each crop." if config["cnn"]["tta"] else "."))
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
            f"(the code), and the mirror image as decoder ending in a sigmoid. Trained on {_seen(ae['models'])} "
            f"for {a['epochs']} epochs ({a['loss']} loss, Adam, one-cycle learning rate "
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
            f"widths doubling from {c['width']}, global average pooling) is trained without labels on "
            f"{_seen(ssl['models'])} with the SimCLR objective: two random views of every crop (a "
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
    rep.heading("Baselines: what every learned model must beat")
    rep.text("Nothing here learns from unlabelled crops: always the largest stage; logistic regression and a "
             "linear SVM on the raw pixels; an RBF SVM on the raw pixels with the 8 turns and mirror images of "
             "every training crop added as copies; an RBF SVM on HOG features (histograms of oriented gradients, "
             "8x8-pixel cells, scikit-image). Same splits, test-time augmentation as every model.")
    rep.table(["baseline", "representation", "accuracy", "macro-F1", "splits", "recall per stage"],
              [[n + _flag(n, metrics), r["representation"], *_row_metrics(r), stage_recall(r["recall"])]
               for n, r in metrics["probes"].items() if r["baseline"]])

    rep.heading("(c) Simple classifiers on the encoded crops")
    rep.text(
        "Each classifier standardises its inputs, then fits on the codes of the training crops of a split and is "
        "scored on that split's held-out crops, averaging its class scores over the codes of the 8 turns and "
        "mirror images of each crop: logistic regression, linear and RBF support vector machines, "
        "k nearest neighbours and a small MLP (scikit-learn). For comparison, the same classifiers "
        "on PCA codes of the same sizes (PCA fitted on the unlabelled crops, or on each split's training crops "
        "when there are none) and on the raw pixels."
    )
    rows = [[n + _flag(n, metrics), r["representation"], *_row_metrics(r), stage_recall(r["recall"])]
            for n, r in metrics["probes"].items() if not r["baseline"]]
    rep.table(["classifier", "representation", "accuracy", "macro-F1", "splits", "recall per stage"], rows)
    if metrics["probe_convergence_warnings"]:
        rep.text(f"{metrics['probe_convergence_warnings']} probe fits stopped at their iteration limit "
                 "before converging (scikit-learn ConvergenceWarning); their scores are those of the stopped fit.")
    if "probe_confusion" in figures:
        rep.figure(figures["probe_confusion"], f"Confusion matrix of the best simple classifier ({metrics['best']['probe']}).")

    # ---------------------------------------------------------------- results
    rep.heading("Results: every model, best first")
    rep.table(["model", "kind", "representation", "accuracy", "macro-F1", "splits", "recall per stage",
               "vs majority"],
              [[r["name"], r["kind"], r["representation"], *_row_metrics(r), stage_recall(r["recall"]),
                "⚠ not better" if r["not_better_than_majority"] else "better"] for r in metrics["results"]])

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
        files.append(f"model.safetensors (+ {len(saved['cnn']['ensemble']) - 1} model-fold*.safetensors): the CNN "
                     f"{saved['cnn']['name']} as a fold ensemble; use it with: replearn predict --model RUN_FOLDER CROPS")
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
        panels, names, title=f"The {len(data.labels)} labelled crops in 2-D{tag}", ncols=2, fontsize=12))
    metrics["embedding"] = {"method": method, "panels": list(panels), "note": embedding_note(method)}
    return files


def summary(metrics: dict[str, Any], out: Path | None) -> str:
    """The closing lines: the headline numbers and where the report is."""
    v = metrics["verdict"]
    sel = v["selection"]
    lines = [f"recommended: {v['recommended']}: accuracy {sel['accuracy_mean']:.3f} +- {sel['accuracy_ci']:.3f} "
             f"(nested selection, 95% CI, {sel['runs']} splits)"]
    base = v["best_baseline"]
    if base:
        b = metrics["probes"][base]
        beaten = "beaten by a learned model" if v["learned_beating_baseline"] else "not beaten by any learned model"
        lines.append(f"best baseline: {base}: accuracy {b['accuracy_mean']:.3f} +- {b['accuracy_ci']:.3f} ({beaten})")
    syn = " -- made from SYNTHETIC data" if metrics["synthetic"] else ""
    lines.append(f"Report: {Path(out or '.') / 'report.html'}{syn}")
    return "\n".join(lines)
