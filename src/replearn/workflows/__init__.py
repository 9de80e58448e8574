"""One short module per thing a user runs; each becomes a CLI subcommand.

A workflow module defines ``COMMAND``, ``HELP``, a ``Config`` dataclass and
``run(cfg, out) -> Result`` (optionally ``EXAMPLES``, ``QUICK`` and the switches
described in :mod:`replearn.workflows._run`, the harness that resolves the
config, makes the run folder and writes the outputs), and reads top to bottom
like a keras-io example; its report lives in ``<name>_report.py``. Modules in
this package that define ``COMMAND`` are found automatically; :data:`ORDER`
fixes how ``replearn --help`` lists them. See docs/architecture.md.
"""

from __future__ import annotations

import importlib
import pkgutil

ORDER = ["assignment", "fashion", "transfer", "autoencoder", "embed", "predict", "synth", "crops", "domain", "course",
         "trajectories", "fewshot", "zeroshot", "explore", "label", "fewlabels"]


def _discover() -> list:
    modules = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "COMMAND"):
            modules.append(module)
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(modules, key=lambda m: (rank.get(m.COMMAND, len(ORDER)), m.COMMAND))


WORKFLOWS: list = _discover()
