"""The ``trialplan`` command line: thin click commands, imported lazily.

Each command parses its options, calls one API function and formats the
result.  User-facing problems (:class:`trialplan.errors.TrialplanError`) become
a message on stderr and exit code 1 here, in one place; click's usage errors
exit with 2.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from trialplan import __version__

# The commands' linear algebra is small (quadrature nodes, batched 3 x 3 solves): more
# BLAS threads only spin after each call, about 0.1 s of CPU per command, and slow it
# when another process holds a core.  Set before any command imports numpy (which
# loads its BLAS); a user's own setting wins.
for _blas_threads in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_blas_threads, "1")

_COMMANDS = {
    "init": ("trialplan.cli.trialfile", "init_cmd", "Write a worked peer-support trial file."),
    "check": ("trialplan.cli.trialfile", "check_cmd", "Validate a trial file; list every problem."),
    "model": ("trialplan.cli.trialfile", "model_cmd",
              "Draw the change model or print its measurement matrix."),
    "measures": ("trialplan.cli.trialfile", "measures_cmd", "List the bundled instruments."),
    "schema": ("trialplan.cli.trialfile", "schema_cmd", "Print the JSON Schema of the trial file."),
    "size": ("trialplan.cli.size", "size", "Sample size or power for the primary outcome."),
    "protocol": ("trialplan.cli.protocol", "protocol_cmd",
                 "Draft the protocol, SAP, process evaluation or feasibility protocol."),
    "templates": ("trialplan.cli.protocol", "templates_cmd",
                  "Export the document templates to customise them."),
    "checklist": ("trialplan.cli.protocol", "checklist_cmd",
                  "SPIRIT 2025 or TIDieR: which items the draft fills."),
    "plan": ("trialplan.cli.plan", "plan_cmd",
             "The trial's sample-size plan: primary, mechanisms, recruitment, pilot."),
    "mediation": ("trialplan.cli.mediation", "mediation_cmd",
                  "Power or n to detect a mechanism as an indirect effect."),
    "simulate": ("trialplan.cli.simulate", "simulate_cmd",
                 "Simulate the planned trial and its planned analysis; dummy data."),
    "analysis-code": ("trialplan.cli.simulate", "analysis_code_cmd",
                      "Write the SAP's analysis as a standalone statsmodels script."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when they run (fast --help and startup)."""

    def list_commands(self, ctx):
        return sorted(_COMMANDS)

    def get_command(self, ctx, name):
        if name not in _COMMANDS:
            return None
        module, attr, _ = _COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, _COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trialplan")
def cli():
    """Plan randomised trials of peer support and other complex interventions.

    Map the change model to measures, size the trial and the mechanism
    evaluation, and draft the protocol.  Results go to stdout, messages to
    stderr; exit 0 ok, 1 bad input or unreachable target, 2 bad command line,
    3 internal error (a bug: please report it).
    """


INTERNAL_ERROR = 3
DEBUG_ENV = "TRIALPLAN_DEBUG"


def main(argv=None):
    """Run the command line; every failure becomes a message and an exit code.

    Exit 1 for bad input (:class:`TrialplanError`, or an operating-system error
    on a named file), 2 for a malformed command line, and 3 for anything else:
    a bug, reported as "internal error ... please report" rather than a crash
    dump.  With the environment variable ``TRIALPLAN_DEBUG`` set, such bugs
    propagate with their traceback (for developers and tests).
    """
    import os
    import warnings

    if not os.environ.get(DEBUG_ENV):
        # numpy's overflow and invalid-value warnings at extreme inputs are not for users:
        # every result is checked to be finite and in range before it is shown.
        warnings.filterwarnings("ignore", category=RuntimeWarning)
    try:
        _main(argv)
    except (SystemExit, KeyboardInterrupt):
        raise
    except MemoryError:
        click.echo("error: out of memory; reduce the size of the request", err=True)
        sys.exit(1)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        click.echo(f"error: cannot access{where}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc}\nThis is a bug in trialplan "
                   f"{__version__}; please report it with the command and input that caused "
                   f"it (set {DEBUG_ENV}=1 to see the traceback).", err=True)
        sys.exit(INTERNAL_ERROR)


def _main(argv=None):
    import os

    from trialplan.errors import TrialplanError
    from trialplan.fileio import source_date

    try:
        if not os.environ.get("SOURCE_DATE_EPOCH", "unset").strip():
            # Set but blank means unset (as source_date reads it); numpy's f2py, imported
            # on the way to the documents, would fail on int("").
            del os.environ["SOURCE_DATE_EPOCH"]
        source_date()  # checked first: numpy and others fail on a malformed value at import
        cli.main(args=argv, prog_name="trialplan", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TrialplanError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)
