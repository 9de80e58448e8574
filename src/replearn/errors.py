"""The one error type for user mistakes (bad files, bad options, bad data).

The CLI turns a :class:`ReplearnError` into one line on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""


class ReplearnError(Exception):
    """A user mistake: the message says what was found and what is allowed."""
