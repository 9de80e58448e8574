"""One short module per thing a user runs; each registers its own CLI subcommand.

A workflow module defines ``COMMAND``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int`` (optionally ``EXAMPLES``), and reads top to bottom like a
keras-io example. Modules in this package that define ``COMMAND`` are found
automatically; :data:`ORDER` fixes how ``replearn --help`` lists them.
"""

from __future__ import annotations

import importlib
import pkgutil

ORDER = ["assignment", "fashion", "transfer", "autoencoder", "embed", "predict", "synth", "crops", "course"]


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
