"""Writing outputs safely: atomically, and never over a user's file without ``force``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from trialplan.errors import OutputExistsError


def write_output(path, data: bytes | str, *, force: bool) -> None:
    """Write ``data`` to ``path`` atomically; refuse to replace a file without ``force``.

    The bytes go to a temporary file in the same directory, which is renamed
    over the target only once complete, so a failure leaves no partial file.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"{path} is a directory")
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; use --force to overwrite it")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise OutputExistsError(f"cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
