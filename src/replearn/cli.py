"""Command-line entry point: ``replearn <workflow> [options]``.

Each workflow module under :mod:`replearn.workflows` is a subcommand: its
flags come from its ``Config`` dataclass through the harness
(:mod:`replearn.workflows._run`), which also runs it.
User mistakes (:class:`~replearn.errors.ReplearnError`) print one line on
stderr and exit with code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Sequence

from replearn import __version__
from replearn.errors import ReplearnError

EXAMPLES = """\
examples:
  replearn assignment --quick            # the main job on built-in synthetic data, in under a minute
  replearn assignment --data data.npz    # the course's real data
  replearn fashion                       # train the lecture's CNN on Fashion-MNIST
  replearn transfer --base runs/fashion-*/ --compare
  replearn autoencoder --compare         # 2-D codes of MNIST vs PCA, t-SNE, ISOMAP
"""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subcommand per registered workflow."""
    from replearn.workflows import WORKFLOWS, _run

    parser = argparse.ArgumentParser(
        prog="replearn",
        description="Representation learning on small image data sets.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"replearn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<workflow>", title="workflows")
    for module in WORKFLOWS:
        p = sub.add_parser(
            module.COMMAND,
            help=module.HELP,
            description=(module.__doc__ or module.HELP).strip().split("\n\n")[0],
            epilog=getattr(module, "EXAMPLES", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _run.add_arguments(p, module)
        p.set_defaults(_run=functools.partial(_run.main, module), _module=module)
    return parser




def _one_line_warnings() -> None:
    """Data warnings (blank crops, a noisy field) print as one line, like errors."""
    import warnings

    from replearn.data.limits import DataWarning

    original = warnings.formatwarning
    if getattr(original, "replearn", False):
        return

    def formatwarning(message, category, filename, lineno, line=None):  # noqa: ANN001 - warnings' own signature
        if issubclass(category, DataWarning):
            return f"replearn: warning: {message}\n"
        return original(message, category, filename, lineno, line)

    formatwarning.replearn = True  # type: ignore[attr-defined]
    warnings.formatwarning = formatwarning


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    _one_line_warnings()
    parser = build_parser()
    argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        args = parser.parse_args(argv)
    except ReplearnError as exc:  # a flag's own parser (e.g. --blocks) refused its text
        command = next((a for a in argv if not a.startswith("-")), "replearn")
        print(f"replearn {command}: error: {exc}", file=sys.stderr)
        return 2
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if getattr(args, "ddp", False):
            _start_distributed(args)
        result = args._run(args)
    except ReplearnError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"replearn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = ""
        if getattr(args._module, "RESUMABLE", False) and args.out:
            hint = f"; continue with: replearn {args.command} --out {args.out} --resume"
        print(f"replearn {args.command}: interrupted; no results were written{hint}", file=sys.stderr)
        return 130
    finally:
        if getattr(args, "ddp", False):
            from replearn.train.distributed import shutdown

            shutdown()
    return int(result or 0)


def _start_distributed(args: argparse.Namespace) -> None:
    """Join torchrun's process group; every rank uses rank 0's run folder, and only rank 0 prints.

    Every rank computes the same results (the engine averages gradients and
    metrics across ranks), and files are written atomically, so the outputs are
    those of rank 0.
    """
    import os

    from replearn.train.distributed import broadcast_text, init_from_env, is_main_process
    from replearn.utils.rundir import make_run_dir

    init_from_env()
    if args.out is None and getattr(args._module, "OUTPUT", "folder") == "folder" \
            and not getattr(args._module, "OUT_HELP", None):
        args.out = broadcast_text(str(make_run_dir(None, args.command)) if is_main_process() else "")
    if not is_main_process():
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
