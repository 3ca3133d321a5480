"""Writing outputs safely: atomically, and never over a user's file without ``force``.

Every output goes through :func:`check_target` (before any work is done, and
again just before writing) and is written to a temporary file in the same
directory that is renamed over the target only once complete.  So trialplan
never writes through a device node, FIFO, socket or directory, never leaves a
partial file, and reports a read-only or full file system as a message naming
the path (:class:`trialplan.errors.OutputError`, exit 1) rather than a crash.
A folder of several files (the figures) is built in a temporary folder beside
it and renamed into place, so a failure leaves no half-made folder.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

from trialplan.errors import InputError, OutputError, OutputExistsError

_ERRNO_TEXT = {
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EISDIR: "it is a directory",
}


def os_error(path, exc: OSError, doing: str = "write") -> OutputError:
    """An :class:`OutputError` for ``exc``, naming ``path`` and the reason in words."""
    reason = _ERRNO_TEXT.get(exc.errno, exc.strerror or str(exc))
    return OutputError(f"cannot {doing} {path}: {reason}")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_target(path, *, force: bool) -> Path:
    """Refuse an output path that cannot be written safely; return it as a :class:`Path`.

    Refused: an existing target that is not a regular file (directory, device,
    FIFO, socket), an existing file without ``force``, and a parent that does
    not exist or is not a directory.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise os_error(path, exc, "write to") from None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"cannot write {path}: it is {_kind(st.st_mode)}, not a file")
        if not force:
            raise OutputExistsError(f"{path} exists; use --force to overwrite it")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise OutputError(f"cannot write {path}: directory {directory} {what}")
    return path


def write_output(path, data: bytes | str, *, force: bool) -> None:
    """Write ``data`` to ``path`` atomically; refuse to replace a file without ``force``.

    The bytes go to a temporary file in the same directory, which is renamed
    over the target only once complete, so a failure leaves no partial file.
    """
    path = check_target(path, force=force)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    directory = path.parent if str(path.parent) else Path(".")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise os_error(path, exc) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def check_directory(directory, names, *, force: bool) -> Path:
    """Refuse a folder of outputs that cannot be written safely, before any work is done.

    ``directory`` must be a directory or not exist yet (its parent must); every
    file ``names`` would be written to must pass :func:`check_target`.
    """
    directory = Path(directory)
    if directory.exists() or directory.is_symlink():
        if not directory.is_dir():
            raise OutputError(f"cannot write into {directory}: it exists and is not a directory")
        for name in names:
            check_target(directory / name, force=force)
    else:
        parent = directory.parent if str(directory.parent) else Path(".")
        if not parent.is_dir():
            raise OutputError(f"cannot create {directory}: directory {parent} does not exist")
    return directory


def write_directory(directory, files: dict, *, force: bool) -> list[str]:
    """Write ``files`` (name -> bytes) into ``directory``, all or nothing where possible.

    A new folder is built under a temporary name beside it and renamed into
    place once every file is written.  Into an existing folder, every target
    is checked before the first is written, and each is written atomically.
    """
    directory = check_directory(directory, files, force=force)
    targets = [directory / name for name in files]
    if directory.is_dir():
        for path, data in zip(targets, files.values(), strict=True):
            write_output(path, data, force=force)
        return [str(t) for t in targets]
    parent = directory.parent if str(directory.parent) else Path(".")
    tmp = None
    try:
        tmp = tempfile.mkdtemp(prefix=f".{directory.name}.", dir=parent)
        for name, data in files.items():
            write_output(Path(tmp) / name, data, force=False)
        os.chmod(tmp, 0o777 & ~_umask())
        os.rename(tmp, directory)
        tmp = None
    except OSError as exc:
        raise os_error(directory, exc) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return [str(t) for t in targets]


def check_input(path, *, what: str, max_bytes: int) -> Path:
    """Refuse an input file that is missing, not a regular file, or over ``max_bytes``.

    For the files handed to other programs (pandoc reads a citation style or a
    reference document whole): a FIFO would block it, a device never end, and
    a huge file take its memory.  ``what`` names the file in the message.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {path} is {_kind(st.st_mode)}, not a file")
    if st.st_size > max_bytes:
        raise InputError(f"{what} {path} is {st.st_size:,} bytes; at most {max_bytes:,} are "
                         "accepted")
    return path


def source_date() -> int | None:
    """``SOURCE_DATE_EPOCH`` (reproducible-builds.org) when set to a valid time, else None."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970; got {raw!r}"
                         ) from None
    if not 315532800 <= value <= 253402300799:  # the dates a ZIP file and a DOCX can hold
        raise InputError(f"SOURCE_DATE_EPOCH {value} is outside 1980-9999")
    return value
