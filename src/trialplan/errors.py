"""The exceptions trialplan raises for problems a user can fix.

The command line turns :class:`TrialplanError` into a message on stderr and
exit code 1; anything else is a bug.  This module imports nothing from the
command-line layer, so the Python API raises the same errors.
"""

from __future__ import annotations


class TrialplanError(Exception):
    """Base of every user-facing problem (bad input, unreachable target)."""


class InputError(TrialplanError, ValueError):
    """An argument is out of range, inconsistent or missing.

    ``names`` lists the arguments the message is about, by their Python names,
    so that the command line can say ``--cluster-size`` where the API says
    ``cluster_size``.
    """

    def __init__(self, message: str = "", *, names=()):
        super().__init__(message)
        self.names = tuple(names)


class UnreachableTargetError(TrialplanError):
    """No admissible value of the unknown reaches the requested target."""


class TrialFileError(TrialplanError):
    """A trial file (or another input file) is invalid.

    ``problems`` holds every problem found, so all can be reported at once.
    """

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class OutputError(TrialplanError):
    """An output cannot be written where asked (not a regular file, read-only, disk full)."""


class OutputExistsError(OutputError):
    """An output file exists and ``--force`` was not given."""
