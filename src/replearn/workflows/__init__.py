"""One short module per thing a user runs; each registers a CLI subcommand.

A workflow module defines ``COMMAND``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``, and reads top to bottom like a keras-io example.
"""

WORKFLOWS: list = []
