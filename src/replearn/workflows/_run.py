"""The one harness every workflow runs through.

A workflow module declares what it needs and nothing else::

    COMMAND = "fashion"                  # the subcommand
    HELP = "one line for `replearn --help`"
    EXAMPLES = "examples: ..."          # optional, shown under `--help`

    @dataclass
    class Config:                         # every option, one field each
        epochs: int = option(20, "passes over the training set")
        seed: int = seed_option()
        def check(self) -> None: ...      # optional: raise ReplearnError on a bad value

    def run(cfg: Config, out: Path | None = None) -> Result:
        ...                               # the recipe: data, model, train, evaluate

The harness (:func:`execute`, and :func:`main` for the command line) resolves
the config once (the dataclass defaults, then ``QUICK`` for ``--quick``, then
the ``--config`` TOML file, then the command-line flags), checks it, makes the
run folder, saves ``config.json``, seeds, calls the recipe and then writes what
the recipe returned: its files (weights, figures, tables), ``report.md`` +
``report.html`` and, last, ``metrics.json``; each file atomically and only after
the recipe succeeded, so a failed run never leaves a file that looks finished.
It is the only code that writes run folders, configs, metrics and reports.

Command-line flags are generated from the Config's fields (help text from the
field's metadata): a new option is one field.

A Config may declare a field ``config`` (flag ``--config``) itself, to know the file's path (the
assignment names it in its messages); the harness reads the file it names either way.

Optional module attributes: ``QUICK`` (field overrides for ``--quick``),
``CONFIG_FILE`` (True: a ``--config TOML`` option), ``RESUMABLE`` (True: a
``--resume`` option that continues the run in ``--out`` with its saved
config: ``run(cfg, out, resume=True)`` then continues each training stage from
its checkpoint, see :mod:`replearn.train.checkpoint`), ``DDP`` (True: a ``--ddp`` option), ``OUTPUT`` (``"folder"``, the
default: ``--out`` is a run folder, ``runs/<command>-<stamp>/`` when not
given; or ``("file", "codes.csv")``: ``--out`` is the file to write, by default
that name inside a new ``runs/<command>-<stamp>/``), ``OUT_HELP`` (help of
``--out``) and ``RESULT_FILES`` (more files whose presence means the run
finished; removed before a run starts again in the same folder).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, Mapping

from replearn.config import did_you_mean, load_toml, merge
from replearn.errors import ReplearnError
from replearn.evaluate.report import Report
from replearn.train import BF16_SETTINGS
from replearn.utils.atomic import save_json, write_text
from replearn.utils.rundir import make_run_dir, new_run_dir_name

QUICK_BANNER = "QUICK RUN: a smoke run on small subsets with few steps, not results"
"""The banner of every ``--quick`` report and closing line."""

FINISHED_FILES = ("metrics.json", "report.md", "report.html")
"""Written last; their presence means the run finished."""

AUTO_ON_OFF = BF16_SETTINGS
"""Choices of a three-way switch (bf16, alignment): ``--x`` alone is 'on', ``--no-x`` 'off'; true/false in a file."""

_MISSING = dataclasses.MISSING


# =============================================================================================
# Declaring options
# =============================================================================================
def option(
    default: Any = _MISSING,
    help: str = "",
    *,
    flag: str | None = None,
    choices: tuple | None = None,
    metavar: str | None = None,
    parse: Callable[[str], Any] | None = None,
    positional: bool = False,
    optional: bool = False,
    required: bool = False,
    cli: bool = True,
    saved: bool = True,
    in_file: bool = True,
) -> Any:
    """A Config field with its command-line flag.

    Args:
        default: the default value (lists and dicts are copied for each Config).
        help: the flag's help text; ``(default: ...)`` is added unless the text says it.
        flag: the flag's name when it is not ``--<field-name-with-dashes>``.
        choices: allowed values (checked by argparse and by :func:`check_choices`).
        metavar: the value's name in ``--help``.
        parse: turns the flag's text into the value (e.g. ``"32/32,16"`` -> ``[[32], [32, 16]]``).
        positional: a positional argument instead of a flag.
        optional: a positional argument that may be left out (``[IMAGES]``).
        required: the flag must be given.
        cli: False: a config-file key only, no flag.
        saved: False: not written to ``config.json`` (e.g. progress bars).
        in_file: False: not accepted from the ``--config`` file (e.g. the input paths).
    """
    meta = {"help": help, "flag": flag, "choices": choices, "metavar": metavar, "parse": parse,
            "positional": positional, "required": required, "cli": cli, "saved": saved, "in_file": in_file,
            "optional": optional}
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: _copy(value), metadata=meta)
    return dataclasses.field(default=None if default is _MISSING else default, metadata=meta)


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def seed_option() -> Any:
    """The random seed (every workflow that draws random numbers)."""
    return option(0, "random seed")


def device_option() -> Any:
    """Where to train: ``auto`` uses CUDA when present."""
    return option("auto", "'auto' (CUDA when present), 'cpu' or 'cuda'")


def data_dir_option() -> Any:
    """Where MNIST and Fashion-MNIST are read from."""
    return option(None, "folder holding mnist/ and fashion-mnist/ IDX files "
                        "(default: $REPLEARN_DATA, the cache, then download)", metavar="DIR", in_file=False)


def quick_option() -> Any:
    """The smoke-run profile."""
    return option(False, "small subsets and few steps: same code path, about a minute", in_file=False)


def progress_option() -> Any:
    """Progress bars on long work (``--no-progress`` hides them)."""
    return option(True, "progress bars", saved=False, in_file=False)


def jobs_option(default: int = 0) -> Any:
    """Worker processes for the independent units of a sweep (grid points x splits, seeds, draws)."""
    return option(default, "worker processes for independent units (grid points, splits, seeds, draws): 0 = one per "
                     "core, 1 = one after another in this process; results are the same for any number",
                  metavar="N", saved=False, in_file=False)


def threads_option(default: int = 0) -> Any:
    """Threads of each worker (PyTorch and BLAS), and of the run's own stages; 0 shares out the cores."""
    return option(default, "threads per worker and for the run's own stages (PyTorch, BLAS); 0 = cores / workers "
                     "(one each with one worker per core; every core outside the workers); on a busy machine "
                     "small models train fastest on 1 (docs/performance.md); numbers change slightly with the "
                     "thread count, so give T to compare runs with different --jobs",
                  metavar="T", in_file=False)


def scheduler_option() -> Any:
    """A Dask scheduler that runs the units instead of local workers (``$REPLEARN_SCHEDULER`` by default)."""
    return option(None, "run the units on a Dask cluster at this address, e.g. tcp://HOST:8786 (default: "
                        "$REPLEARN_SCHEDULER, else local workers; needs pip install 'replearn[cluster]')",
                  metavar="ADDRESS", saved=False, in_file=False)


def bf16_option(default: str = "auto", what: str = "training", note: str = "") -> Any:
    """bfloat16 autocast: ``auto`` (where the hardware has native bf16), ``on`` or ``off``; ``note`` ends the help."""
    return option(default, f"bfloat16 autocast while {what}: 'auto' (where the CPU/GPU has native bf16), 'on' "
                           "(wherever it runs) or 'off'" + (f"; {note}" if note else ""), choices=AUTO_ON_OFF)


@dataclasses.dataclass
class RunOptions:
    """The options of every workflow that trains: seed, device, the quick profile, progress bars.

    A workflow's Config inherits them: ``class Config(RunOptions): ...``.
    """

    seed: int = seed_option()
    device: str = device_option()
    quick: bool = quick_option()
    progress: bool = progress_option()


@dataclasses.dataclass
class ParallelOptions:
    """The options of a workflow whose independent units run in parallel: ``--jobs``, ``--threads``, ``--scheduler``.

    A workflow's Config inherits them too: ``class Config(RunOptions, ParallelOptions): ...``; the harness checks them.
    """

    jobs: int = jobs_option()
    threads: int = threads_option()
    scheduler: str | None = scheduler_option()

    def workers(self) -> Any:
        """The checked :class:`~replearn.utils.parallel.Workers` these options ask for (``progress``: the Config's)."""
        from replearn.utils.parallel import Workers

        workers = Workers.of(self)
        workers.check()
        return workers


@dataclasses.dataclass
class MnistRunOptions(RunOptions):
    """:class:`RunOptions` and the folder of the MNIST-like IDX files."""

    data_dir: str | None = data_dir_option()


def parse_int_list(text: str) -> list[int]:
    """``"128,32"`` -> ``[128, 32]``; ``""`` -> ``[]``."""
    try:
        return [int(w) for w in text.split(",")] if text.strip() else []
    except ValueError:
        raise ReplearnError(f"{text!r}: expected integers separated by commas, like 128,32") from None


def check_choices(cfg: Any) -> None:
    """Raise one line for a field whose value is not one of its ``choices`` (values from a file or Python)."""
    for f in dataclasses.fields(cfg):
        allowed = f.metadata.get("choices")
        value = getattr(cfg, f.name)
        if allowed and value is not None and value not in allowed:
            raise ReplearnError(f"{f.name}: got {value!r}; allowed: {', '.join(repr(c) for c in allowed)}")


def check_at_least(cfg: Any, minimum: float, *names: str) -> None:
    """Raise one line when one of the named numeric fields is below ``minimum``."""
    for name in names:
        value = getattr(cfg, name)
        if value < minimum:
            raise ReplearnError(f"--{name.replace('_', '-')}: must be at least {minimum}, got {value}")


# =============================================================================================
# What a recipe returns
# =============================================================================================
@dataclasses.dataclass
class Result:
    """What a recipe made: files to write, a report, the metrics and the closing lines.

    Files are written in the order they were added, then the report, then
    ``metrics.json``. Names are relative to the run folder; file workflows
    (``OUTPUT = ("file", ...)``) name their files by path.
    """

    metrics: dict[str, Any] | None = None
    report: Report | None = None
    summary: str = ""
    files: list[tuple[str, Callable[[Path], Any]]] = dataclasses.field(default_factory=list)
    synthetic: bool = False
    """True when the results come from synthetic data (the closing line says so)."""

    def add(self, name: str | os.PathLike, write: Callable[[Path], Any]) -> None:
        """A file written by ``write(path)`` (which must write atomically, as replearn's writers do)."""
        self.files.append((os.fspath(name), write))

    def weights(self, name: str, model: Any, meta: Mapping[str, Any] | None = None) -> None:
        """A model as safetensors + JSON sidecar."""
        from replearn.models import save_model

        self.add(name, lambda path: save_model(model, path, dict(meta or {})))

    def figure(self, name: str, fig: Any) -> None:
        """A matplotlib figure as PNG."""
        from replearn.evaluate.figures import save_figure

        self.add(name, lambda path: save_figure(fig, path))

    def text(self, name: str, text: str) -> None:
        """A text file (UTF-8)."""
        self.add(name, lambda path: write_text(path, text))

    def json(self, name: str, obj: Any) -> None:
        """A JSON file."""
        self.add(name, lambda path: save_json(path, obj))


# =============================================================================================
# Resolving the config
# =============================================================================================
def _fields(module: ModuleType) -> list[dataclasses.Field]:
    return list(dataclasses.fields(module.Config))


def defaults(module: ModuleType, quick: bool = False) -> dict[str, Any]:
    """The Config's defaults as a dict, with ``QUICK``'s overrides when ``quick``."""
    values = dataclasses.asdict(module.Config())
    if quick:
        values.update(_copy(getattr(module, "QUICK", {})))
        values["quick"] = True
    return values


def build(module: ModuleType, values: Mapping[str, Any]) -> Any:
    """A checked Config from ``values``: ``cfg.check()`` and the fields' choices."""
    cfg = module.Config(**_switches(module, values))
    check_choices(cfg)
    if hasattr(cfg, "check"):
        cfg.check()
    if isinstance(cfg, ParallelOptions):
        cfg.workers()  # checked: a bad --jobs, or --scheduler without Dask installed, is one line
    return cfg


def _switches(module: ModuleType, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with true/false (older configs) turned into 'on'/'off' for auto/on/off switches (bf16, align)."""
    values = dict(values)
    for f in _fields(module):
        if f.metadata.get("choices") == AUTO_ON_OFF and isinstance(values.get(f.name), bool):
            values[f.name] = "on" if values[f.name] else "off"
    return values


def resolve_config(module: ModuleType, args: argparse.Namespace) -> Any:
    """Defaults, then ``QUICK`` (``--quick``), then the ``--config`` file, then the flags; checked once."""
    quick = bool(getattr(args, "quick", False))
    values = defaults(module, quick)
    path = getattr(args, "config", None)
    if path is not None:
        file_keys = [f.name for f in _fields(module) if f.metadata.get("in_file", True)]
        values = merge(values, _switches(module, _only(load_toml(path), file_keys, str(path))), str(path))
    flags = {f.name: getattr(args, f.name) for f in _fields(module) if f.metadata.get("cli", True)}
    values = merge(values, {k: v for k, v in flags.items() if v is not None}, "command line")
    return build(module, values)


def _only(table: Mapping[str, Any], keys: list[str], source: str) -> dict[str, Any]:
    """``table`` when every key is in ``keys``; else one line with a did-you-mean suggestion."""
    for key in table:
        if key not in keys:
            raise ReplearnError(f"{source}: unknown key {key!r}{did_you_mean(key, keys)}")
    return dict(table)


def saved_config(cfg: Any) -> dict[str, Any]:
    """What ``config.json`` holds: every field except those marked ``saved=False``."""
    return {f.name: _copy(getattr(cfg, f.name)) for f in dataclasses.fields(cfg) if f.metadata.get("saved", True)}


# =============================================================================================
# Running
# =============================================================================================
def _is_file_output(module: ModuleType) -> bool:
    return isinstance(getattr(module, "OUTPUT", "folder"), tuple)


def output_location(module: ModuleType, out: str | os.PathLike | None) -> Path:
    """The run folder, or for file workflows the file, that ``--out`` names (made when needed)."""
    if not _is_file_output(module):
        return make_run_dir(out, module.COMMAND)
    if out is None:
        return new_run_dir_name(module.COMMAND) / module.OUTPUT[1]  # made when the file is written
    return Path(out)


MANIFEST = ".replearn-outputs.json"
"""The files a finished run wrote (so that ``--overwrite`` can remove exactly them)."""

LOCK = ".replearn.lock"
"""Held (``flock``) while a run writes into its folder."""

MIN_FREE_MB = 50
"""A run folder on a disk with less free space than this (or than the workflow's ``OUTPUT_MB``) is refused."""


def _first_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(module: ModuleType, target: Path, *, folder: bool) -> None:
    """Refuse, in one line and before any work, an output location that cannot take the run's files.

    ``target`` is the run folder (``folder``) or the file to write (or a folder to write it into).
    Checked: a file path is not a symlink, a FIFO or a device (a missing parent folder is made, with a note); a run folder is a folder; the nearest existing folder is
    writable; the disk has room for the workflow's estimate (``OUTPUT_MB``, at least ``MIN_FREE_MB``).
    """
    if not folder:
        if target.is_symlink() or (target.exists() and not target.is_file() and not target.is_dir()):
            kind = "a symlink" if target.is_symlink() else "not a regular file (a FIFO or a device)"
            raise ReplearnError(f"--out {target}: is {kind}; give the path of a regular file to write")
    elif target.exists() and not target.is_dir():
        raise ReplearnError(f"--out {target}: exists and is not a directory")
    base = _first_existing(target if folder else target.parent)
    if not base.is_dir():
        raise ReplearnError(f"--out {target}: {base} is not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ReplearnError(f"--out {target}: {base} is not writable")
    if folder and target.exists() and not os.access(target, os.W_OK | os.X_OK):
        raise ReplearnError(f"--out {target}: the folder is not writable")
    need = max(MIN_FREE_MB, int(getattr(module, "OUTPUT_MB", 0)))
    free = shutil.disk_usage(base).free / 2**20
    if free < need:
        raise ReplearnError(f"--out {target}: only {free:.0f} MB free on its disk; this run writes up to about "
                            f"{need} MB")


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock: a second run on the same folder gets one line instead of mixing files."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fh = open(run_dir / LOCK, "a+")  # noqa: SIM115 - closed below
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ReplearnError(f"--out {run_dir}: another replearn run is writing into this folder; wait for it "
                                "or choose another --out") from None
        from replearn.train.checkpoint import STAGES_DIR

        for stray in [*run_dir.glob(".*.tmp"), *(run_dir / STAGES_DIR).rglob(".*.tmp")]:
            stray.unlink(missing_ok=True)  # an interrupted atomic write of an earlier run
        yield
    finally:
        fh.close()


def earlier_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds (part of) another run: its config, results or outputs."""
    return any((run_dir / name).exists() for name in ("config.json", MANIFEST, *FINISHED_FILES))


def clear_run(module: ModuleType, run_dir: Path) -> None:
    """Remove an earlier run's files from ``run_dir`` (``--overwrite``): its listed outputs, config, results."""
    names = [*FINISHED_FILES, *getattr(module, "RESULT_FILES", ()), "config.json", "checkpoint.pt"]
    try:
        names += json.loads((run_dir / MANIFEST).read_text())
    except (OSError, ValueError, TypeError):
        pass
    for name in names:
        path = run_dir / str(name)
        if path.resolve().is_relative_to(run_dir.resolve()) and (path.is_file() or path.is_symlink()):
            path.unlink()
    (run_dir / MANIFEST).unlink(missing_ok=True)
    from replearn.train.checkpoint import STAGES_DIR

    stages = run_dir / STAGES_DIR  # the per-stage checkpoints of a resumable run
    if stages.is_dir() and not stages.is_symlink():
        shutil.rmtree(stages)


def clear_finished(module: ModuleType, run_dir: Path) -> None:
    """Remove an earlier run's finished-result files, so a failing run cannot look finished."""
    for name in (*FINISHED_FILES, *getattr(module, "RESULT_FILES", ())):
        (run_dir / name).unlink(missing_ok=True)


def execute(module: ModuleType, cfg: Any, out: str | os.PathLike | None = None, *, resume: bool = False,
            overwrite: bool = False) -> Result:
    """Run workflow ``module`` with ``cfg`` into ``out`` and write its outputs; return the recipe's Result.

    The Python equivalent of ``replearn <command>``: the output location is checked (writable, room,
    not another run's folder unless ``overwrite``, not locked by a running run), the run folder made
    (``runs/<command>-<stamp>/`` when ``out`` is None), ``config.json`` saved, the seed set, the recipe
    run, and only then its files, report and metrics written. A write that fails removes what this run
    wrote and raises one line.
    """
    from replearn.train.distributed import is_main_process
    from replearn.utils.runtime import seed_everything

    if _is_file_output(module):
        target = output_location(module, out)
        check_writable(module, target, folder=False)
        if hasattr(cfg, "seed"):
            seed_everything(cfg.seed)
        result = module.run(cfg, target)
        if not target.parent.exists() and not str(target).startswith("runs" + os.sep):
            print(f"note: creating the folder {target.parent} for --out")
        _write_or_undo(result, Path(), cfg)
        return result
    root = Path(out) if out is not None else new_run_dir_name(module.COMMAND)
    if not is_main_process():  # --ddp: every rank trains alike, rank 0 alone checks, locks and writes
        if hasattr(cfg, "seed"):
            seed_everything(cfg.seed)
        return module.run(cfg, root) if not resume else module.run(cfg, root, resume=True)
    check_writable(module, root, folder=True)
    make_run_dir(root, module.COMMAND)
    with locked(root):
        if not resume and earlier_run(root):
            if not overwrite:
                raise ReplearnError(f"--out {root}: holds another run's files (config.json, results); choose a new "
                                    "--out, add --overwrite to replace them, or --resume where the command has it")
            clear_run(module, root)
        clear_finished(module, root)
        if not resume:
            save_json(root / "config.json", saved_config(cfg))
        print(f"run directory: {root}")
        if hasattr(cfg, "seed"):
            seed_everything(cfg.seed)
        try:
            result = module.run(cfg, root) if not resume else module.run(cfg, root, resume=True)
        except ReplearnError:  # refused input; an interrupt keeps config.json: --resume restarts from it
            if not resume:
                _forget_if_nothing_to_resume(root)
            raise
        _write_or_undo(result, root, cfg)
    return result


def _forget_if_nothing_to_resume(root: Path) -> None:
    """After a run that failed with a one-line error: remove its ``config.json`` unless it left checkpoints to
    ``--resume`` from, so that the same ``--out`` takes the corrected command without ``--overwrite`` (a mistyped
    ``--data-dir``, say)."""
    from replearn.train.checkpoint import STAGES_DIR, checkpoint_path

    if not (root / STAGES_DIR).exists() and not checkpoint_path(root).exists():
        (root / "config.json").unlink(missing_ok=True)


def _write_or_undo(result: Result, root: Path, cfg: Any) -> None:
    """:func:`write_outputs`; a failed write (disk full, a file-size limit) removes what it wrote, one line."""
    written: list[Path] = []
    try:
        write_outputs(result, root, cfg, written)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        where = f" {exc.filename}" if exc.filename else ""
        reason = exc.strerror or os.strerror(exc.errno or errno.EIO)
        raise ReplearnError(f"cannot write the results{where}: {reason}; nothing of this run's results was kept "
                            "(free some space or choose another --out)") from None


def write_outputs(result: Result, root: Path, cfg: Any, written: list[Path] | None = None) -> None:
    """The recipe's files, then the report (with the config and the banners), then ``metrics.json``.

    Each path is appended to ``written`` once it is in place; the run folder's manifest lists them.
    """
    written = [] if written is None else written
    quick = bool(getattr(cfg, "quick", False))
    for name, write in result.files:
        path = root / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise ReplearnError(f"{path}: is not a regular file (a symlink, FIFO or device); not replaced")
        write(path)
        written.append(path)
        if path.suffix == ".safetensors":
            written.append(path.with_suffix(".json"))
    if result.report is not None:
        report = result.report
        if quick and QUICK_BANNER not in report.banner:
            report.banner = ". ".join(b.rstrip(".") for b in (report.banner, QUICK_BANNER) if b)
        report.heading("Configuration")
        report.table(["key", "value"], [[k, _show(v)] for k, v in _flat(saved_config(cfg)).items()])
        written += report.write(root)
    if root != Path():  # a run folder: the manifest of its outputs, then metrics.json last
        names = sorted({os.path.relpath(p, root) for p in written})
        save_json(root / MANIFEST, names)
    if result.metrics is not None:
        metrics = dict(result.metrics)
        metrics.setdefault("quick", quick)
        written.append(save_json(root / "metrics.json", metrics))
    summary = result.summary.rstrip()
    if quick:  # the closing line carries the banner
        summary = f"{summary} [{QUICK_BANNER}]" if summary else QUICK_BANNER
    if summary:
        print(summary)
    sys.stdout.flush()


def _flat(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as ``table.key`` rows."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else str(value)


# =============================================================================================
# The command line
# =============================================================================================
def flag_name(f: dataclasses.Field) -> str:
    """``--batch-size`` for field ``batch_size`` unless the field names its flag."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _help(f: dataclasses.Field, default: Any) -> str:
    text = f.metadata.get("help", "")
    if "default" in text or f.metadata.get("required") or f.metadata.get("positional"):
        return text
    if default is False:
        return text
    if default is True:
        shown = "on"
    elif default in (None, [], {}):
        return text
    else:
        shown = _show(default)
    return f"{text} (default: {shown})" if text else f"default: {shown}"


def add_arguments(parser: argparse.ArgumentParser, module: ModuleType) -> None:
    """The flags of ``module``'s Config fields, plus the harness's options."""
    base = module.Config()
    quick = getattr(module, "QUICK", {})
    own = parser.add_argument_group(f"{module.COMMAND} options")
    common = parser.add_argument_group("common options")
    common_names = {"seed", "device", "data_dir", "quick", "progress"}
    for f in _fields(module):
        meta = f.metadata
        if not meta.get("cli", True):
            continue
        default = getattr(base, f.name)
        help_text = _help(f, default)
        if f.name in quick and not isinstance(default, bool):
            extra = f"{_show(quick[f.name])} with --quick"
            help_text = help_text[:-1] + f"; {extra})" if help_text.endswith(")") else f"{help_text} ({extra})"
        group = common if f.name in common_names else own
        if meta.get("positional"):
            group.add_argument(f.name, help=help_text, metavar=meta.get("metavar"),
                               nargs="?" if meta.get("optional") else None)
            continue
        kwargs: dict[str, Any] = {"dest": f.name, "help": help_text, "default": None}
        if meta.get("choices") == AUTO_ON_OFF:  # --bf16 alone is 'on'; --no-bf16 is 'off' (likewise --align)
            group.add_argument(flag_name(f), dest=f.name, nargs="?", const="on", choices=meta["choices"],
                               default=None, help=help_text)
            group.add_argument("--no-" + flag_name(f)[2:], dest=f.name, action="store_const", const="off",
                               help=argparse.SUPPRESS)
            continue
        if default is False:  # a switch: --compare (and a hidden --no-compare to undo a config file's true)
            group.add_argument(flag_name(f), dest=f.name, action="store_true", default=None, help=help_text)
            group.add_argument("--no-" + flag_name(f)[2:], dest=f.name, action="store_false", help=argparse.SUPPRESS)
            continue
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = meta.get("parse") or (type(default) if default is not None else str)
            if meta.get("choices"):
                kwargs["choices"] = meta["choices"]
            if meta.get("metavar"):
                kwargs["metavar"] = meta["metavar"]
            if meta.get("required"):
                kwargs["required"] = True
        group.add_argument(flag_name(f), **kwargs)
    if getattr(module, "CONFIG_FILE", False):
        own.add_argument("--config", metavar="TOML",
                         help="settings file (keys as in config.json); command-line options override it")
    if getattr(module, "RESUMABLE", False):
        own.add_argument("--resume", action="store_true",
                         help="continue the run in --out from its checkpoint, with its saved settings")
    common.add_argument("--out", metavar="PATH",
                        help=getattr(module, "OUT_HELP", "run directory (default: runs/<command>-<timestamp>/)"))
    if not _is_file_output(module):
        common.add_argument("--overwrite", action="store_true",
                            help="replace the results of an earlier run in --out (default: refuse)")
    if getattr(module, "DDP", False):
        common.add_argument("--ddp", action="store_true",
                            help="train with DistributedDataParallel; start with "
                                 "`torchrun --nproc-per-node N -m replearn <workflow> --ddp`")
    common.add_argument("--debug", action="store_true", help="show full tracebacks for errors")


def _resume_config(module: ModuleType, args: argparse.Namespace) -> Any:
    """The saved Config of the run in ``--out``, for ``--resume``; refuses any other setting."""
    from replearn.train import CHECKPOINT_NAME

    if not args.out:
        raise ReplearnError("--resume needs --out DIR: the run directory to continue (it holds config.json)")
    run_dir = Path(args.out)
    if not (run_dir / "config.json").is_file():  # a run saves its config before it trains
        raise ReplearnError(f"--resume: {run_dir} holds no run to continue (no config.json; {CHECKPOINT_NAME} "
                            "does not exist); start it without --resume")
    keep = {"data_dir", "device", "progress", "seed", "jobs", "scheduler"}
    given = [flag_name(f) for f in _fields(module)
             if f.metadata.get("cli", True) and f.name not in keep and getattr(args, f.name) is not None]
    given += ["--config"] if getattr(args, "config", None) else []
    if given:
        raise ReplearnError(f"--resume continues with the settings saved in {run_dir / 'config.json'}; drop {given[0]}")
    try:
        saved = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReplearnError(f"--resume: cannot read {run_dir / 'config.json'} ({exc})") from None
    if not isinstance(saved, dict):
        raise ReplearnError(f"--resume: {run_dir / 'config.json'} is not a table of settings")
    values = merge(defaults(module), _switches(module, saved), str(run_dir / "config.json"))
    if args.seed not in (None, 0, values.get("seed")):
        raise ReplearnError(f"--resume: {run_dir} was trained with seed {values.get('seed')}; drop --seed {args.seed}")
    for key in ("data_dir", "device", "progress", "jobs", "scheduler"):
        if key in values and getattr(args, key, None) is not None:
            values[key] = getattr(args, key)
    return build(module, values)


def main(module: ModuleType, args: argparse.Namespace) -> int:
    """``replearn <command>``: resolve, run, write; returns the exit code."""
    resumable = getattr(module, "RESUMABLE", False) and not _is_file_output(module)
    if resumable and args.out is None and not getattr(args, "resume", False):
        args.out = str(new_run_dir_name(module.COMMAND))  # named now, so that Ctrl-C can say how to resume
    if getattr(args, "resume", False):
        cfg = _resume_config(module, args)
        execute(module, cfg, args.out, resume=True)
        return 0
    cfg = resolve_config(module, args)
    execute(module, cfg, args.out, overwrite=bool(getattr(args, "overwrite", False)))
    return 0
