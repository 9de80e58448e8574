"""The assignment's numbers: every result of the run as ``metrics.json``, and the comparisons the report discusses."""

from __future__ import annotations

import platform
from typing import Any

import numpy as np
import torch

import replearn
from replearn.data import AssignmentData
from replearn.evaluate.protocol import (
    Comparison, Protocol, Scores, Selection, Split, best_of, compare, nested_selection, shown_better,
)
from replearn.train import bf16_enabled
from replearn.workflows._assignment_models import CnnResult, ProbeResult, Stage

SUMMARY_KEYS = ("accuracy_mean", "accuracy_ci", "macro_f1_mean", "macro_f1_ci", "runs", "recall")
"""What the results table keeps of a model's summary."""
LEARNED = ("autoencoder", "ssl", "pca")
"""Probe representations that were learned from the crops (with the CNNs: the "learned models")."""


def _scores(records: dict[str, CnnResult] | dict[str, ProbeResult]) -> dict[str, Scores]:
    return {name: r.scores for name, r in records.items()}


def _find(probes: dict[str, ProbeResult], probe: str, kind: str, dim: int | None = None) -> str | None:
    """The name of classifier ``probe`` on a representation of ``kind`` (and code size ``dim``), if run."""
    return next((n for n, r in probes.items() if r.probe == probe and r.kind == kind and (dim is None or r.dim == dim)
                 and r.representation != "raw pixels + D4 copies"), None)


def comparisons(cnn: dict[str, CnnResult], probes: dict[str, ProbeResult]) -> list[Comparison]:
    """The paired comparisons the report discusses, each with a sentence generated from the numbers."""
    out: list[Comparison] = []

    def add(title: str, a: str, ra: CnnResult | ProbeResult, b: str, rb: CnnResult | ProbeResult) -> None:
        out.append(compare(title, a, ra.scores, b, rb.scores))

    best_cnn = best_of(_scores(cnn))
    best_probe = best_of(_scores({n: r for n, r in probes.items() if not r.baseline}))
    best_base = best_of(_scores({n: r for n, r in probes.items() if r.baseline}))
    learned = {**_scores(cnn), **{n: r.scores for n, r in probes.items() if r.kind in LEARNED}}
    best_learned = best_of(learned)
    if best_learned and best_base:
        rec = cnn.get(best_learned) or probes[best_learned]
        add("Best learned model vs best baseline", best_learned, rec, best_base, probes[best_base])
    if best_cnn and best_probe:
        add("Best CNN vs best simple classifier", best_cnn, cnn[best_cnn], best_probe, probes[best_probe])
    if best_cnn:
        ranked = sorted(cnn, key=lambda n: -float(np.mean(cnn[n].scores.accuracy)))
        twins = {cnn[n].point.supervised().name for n in ranked[:2] if cnn[n].point.method == "semisup"}
        if len(ranked) > 1 and not twins & set(ranked[:2]):  # a semisup row and its twin: compared below
            add("Best vs second-best CNN of the grid", ranked[0], cnn[ranked[0]], ranked[1], cnn[ranked[1]])
        point = cnn[best_cnn].point
        with_aug, without = point.twin(True).name, point.twin(False).name
        if with_aug in cnn and without in cnn:
            add("CNN with vs without augmentation", with_aug, cnn[with_aug], without, cnn[without])
    supervised = {n: r for n, r in cnn.items() if r.point.method == "cnn" and r.point.pretrain == "none"}
    for name, rec in cnn.items():  # the grid's semi-supervised and fine-tuned rows against the plain CNN
        if rec.point.method == "semisup" and rec.point.supervised().name in supervised:
            twin = rec.point.supervised().name
            add("Semi-supervised vs supervised CNN (same network, same labelled crops)", name, rec, twin, cnn[twin])
        elif rec.point.method == "simclr_ft" and supervised:
            twin = best_of(_scores(supervised))
            add("SimCLR fine-tuned vs the best supervised CNN (same labelled crops)", name, rec, twin, cnn[twin])
    ae_probes = {n: r for n, r in probes.items() if r.kind == "autoencoder"}
    best_ae = best_of(_scores(ae_probes))
    if best_ae:
        rec = probes[best_ae]
        raw = _find(probes, rec.probe, "pixels")
        if raw:
            add("Autoencoder codes vs raw pixels (same classifier)", best_ae, rec, raw, probes[raw])
        pca = _find(probes, rec.probe, "pca", rec.dim)
        if pca:
            add(f"Autoencoder vs PCA, both {rec.dim}-D (same classifier)", best_ae, rec, pca, probes[pca])
        for other in [n for n, r in ae_probes.items() if r.probe == rec.probe and n != best_ae]:
            add("Bottleneck size (same classifier)", best_ae, rec, other, probes[other])
    best_ssl = best_of(_scores({n: r for n, r in probes.items() if r.kind == "ssl"}))
    if best_ssl:
        rec = probes[best_ssl]
        same = {n: r for n, r in ae_probes.items() if r.probe == rec.probe}
        if same:
            ae_name = best_of(_scores(same))
            add("SimCLR features vs autoencoder codes (same classifier)", best_ssl, rec, ae_name, probes[ae_name])
        raw = _find(probes, rec.probe, "pixels")
        if raw:
            add("SimCLR features vs raw pixels (same classifier)", best_ssl, rec, raw, probes[raw])
        if best_cnn and best_ssl != best_probe:  # otherwise "best CNN vs best simple classifier" says it
            add("Best CNN vs SimCLR features + simple classifier", best_cnn, cnn[best_cnn], best_ssl, rec)
    if best_probe and not ae_probes:
        raw = {n: r.scores for n, r in probes.items() if r.kind == "pixels"}
        pca = {n: r.scores for n, r in probes.items() if r.kind == "pca"}
        if raw and pca:
            a, b = best_of(pca), best_of(raw)
            add("PCA codes vs raw pixels", a, probes[a], b, probes[b])
    return out


def choose(data: AssignmentData, splits: list[Split], cnn: dict[str, CnnResult],
           probes: dict[str, ProbeResult]) -> tuple[Selection, Selection | None]:
    """Nested selection among every model (the recommended one), and among the CNNs (the one ``predict`` uses)."""
    labels, k = data.labels, data.n_classes
    selection = nested_selection({**_scores(cnn), **_scores(probes)}, labels, splits, k)
    savable = {n: r for n, r in cnn.items() if r.point.method != "simclr_ft"}  # simclr_ft rows keep no model
    return selection, nested_selection(_scores(savable), labels, splits, k) if savable else None


def verdicts(cnn: dict[str, CnnResult], probes: dict[str, ProbeResult], selection: Selection) -> dict[str, Any]:
    """The report's plain answers: the recommended model, the best baseline, whether a learned model beats
    it (paired t-test over the splits, p < 0.05), and the rows not better than always guessing the largest class."""
    everything = {**_scores(cnn), **_scores(probes)}
    baselines = {n: r.scores for n, r in probes.items() if r.baseline}
    learned = {**_scores(cnn), **{n: r.scores for n, r in probes.items() if r.kind in LEARNED}}
    best_base, best_learned = best_of(baselines), best_of(learned)
    majority = next((n for n, r in probes.items() if r.probe == "majority"), None)
    at_chance = []
    if majority:
        floor = everything[majority]
        for name, sc in everything.items():
            few = sc.runs <= 3  # an interval or test on 3 splits or fewer says nothing; compare means
            better = np.mean(sc.accuracy) > np.mean(floor.accuracy) if few else shown_better(sc, floor)
            if name != majority and not better:
                at_chance.append(name)
    beating = sorted((n for n in learned if best_base and shown_better(learned[n], baselines[best_base])),
                     key=lambda n: -learned[n].rank()[0])
    recommended = selection.recommended
    features = {n: r.scores for n, r in probes.items() if r.kind in ("autoencoder", "ssl")}
    best_features = best_of(features)
    raw = _find(probes, probes[best_features].probe, "pixels") if best_features else None
    return {
        "features_vs_pixels": {"features": best_features, "pixels": raw,
                               "beats": bool(raw and shown_better(features[best_features], probes[raw].scores))},
        "recommended": recommended, "selection": selection.to_dict(),
        "recommended_outer": everything[recommended].summary(),
        "best_baseline": best_base, "best_learned": best_learned, "learned_beating_baseline": beating,
        "majority": majority, "not_better_than_majority": at_chance,
    }


def assemble_metrics(
    data: AssignmentData, protocol: Protocol, cfg: Any, cnn: dict[str, CnnResult], ae: Stage, ssl: Stage,
    probes: dict[str, ProbeResult], warned: int, saved: dict[str, Any], timing: dict[str, float], device: str,
    selection: Selection, cnn_choice: Selection | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as plain JSON-ready numbers and strings (``cfg``: the assignment's Config)."""
    counts = np.bincount(data.labels, minlength=data.n_classes).tolist()
    cnn_out = {name: rec.metrics() for name, rec in cnn.items()}
    probe_out = {name: rec.metrics() for name, rec in probes.items()}
    results = [
        {"name": n, "kind": "CNN", "representation": "pixels (end to end)", **{k: r[k] for k in SUMMARY_KEYS}}
        for n, r in cnn_out.items()
    ] + [
        {"name": n, "kind": "baseline" if r["baseline"] else "probe", "representation": r["representation"],
         **{k: r[k] for k in SUMMARY_KEYS}}
        for n, r in probe_out.items()
    ]
    results.sort(key=lambda r: (-r["accuracy_mean"], -r["macro_f1_mean"]))
    verdict = verdicts(cnn, probes, selection)
    for r in results:
        r["not_better_than_majority"] = r["name"] in verdict["not_better_than_majority"]
    device_type = torch.device(device).type
    return {
        "synthetic": bool(data.synthetic),
        "data": {
            "source": data.source, "synthetic": bool(data.synthetic), "n_labelled": int(len(data.labels)),
            "n_unlabelled": int(len(data.unlabelled)), "image_size": [int(s) for s in data.labelled.shape[1:]],
            "pixel_type": str(data.labelled.dtype), "class_names": list(data.class_names[: data.n_classes]),
            "class_counts": counts,
        },
        "protocol": {
            **protocol.to_dict(), "seed": int(cfg.seed), "quick": bool(cfg.quick),
            "chance_accuracy": float(max(counts) / sum(counts)),
        },
        "verdict": verdict,
        "cnn_selection": cnn_choice.to_dict() if cnn_choice else None,
        "cnn": cnn_out,
        "autoencoder": ae.metrics(),
        "ssl": ssl.metrics(),
        "probes": probe_out,
        "probe_convergence_warnings": int(warned),
        "results": results,
        "best": {"cnn": best_of(_scores(cnn)), "probe": best_of(_scores({n: r for n, r in probes.items() if not r.baseline})),
                 "baseline": verdict["best_baseline"], "overall": results[0]["name"] if results else None},
        "comparisons": [c.to_dict() for c in comparisons(cnn, probes)],
        "saved": saved,
        "timing": dict(timing),
        "environment": {
            "replearn": replearn.__version__, "torch": torch.__version__, "python": platform.python_version(),
            "device": device, "torch_threads": torch.get_num_threads(),
            **{f"bf16_{table}": bf16_enabled(getattr(cfg, table)["bf16"], device_type)
               for table in ("cnn", "autoencoder", "ssl")},
        },
    }
