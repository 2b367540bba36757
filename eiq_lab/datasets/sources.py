"""Reading a dataset from a folder, a tar (any compression) or a zip, safely and in one pass.

Hostile archive members (absolute paths, `..`, links, devices, oversized) are reported, never read.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError

#: Members larger than this are refused without being read (override: EIQ_MAX_MEMBER_BYTES).
DEFAULT_MAX_MEMBER_BYTES = 256 * 1024 * 1024

ProblemSink = Callable[[str, str], None]


def max_member_bytes() -> int:
    return int(os.environ.get("EIQ_MAX_MEMBER_BYTES", DEFAULT_MAX_MEMBER_BYTES))


@dataclass
class Entry:
    """One file of a dataset: its path inside the dataset (POSIX, relative) and its bytes.

    `read()` is valid only while the entry is current: archives are read in one pass.
    """

    path: str
    size: int
    read: Callable[[], bytes]

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))


def _unsafe_reason(name: str) -> str | None:
    if not name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path in archive: refused"
    if "\\" in name:
        name = name.replace("\\", "/")
    if ".." in name.split("/"):
        return "path escapes the archive ('..'): refused"
    return None


def _clean(name: str) -> str:
    cleaned = posixpath.normpath(name.replace("\\", "/"))
    return "" if cleaned == "." else cleaned


class Source:
    """A dataset location opened for one pass over its files."""

    def __init__(self, path: str | os.PathLike, on_problem: ProblemSink | None = None):
        self.path = Path(path)
        self.on_problem = on_problem or (lambda file, reason: None)
        if not self.path.exists():
            raise InputError(f"dataset {self.path} does not exist")
        if self.path.is_dir():
            self.kind = "folder"
        elif zipfile.is_zipfile(self.path):
            self.kind = "zip"
        elif _is_tar(self.path):
            self.kind = "tar"
        else:
            raise InputError(
                f"{self.path} is neither a folder nor a tar/zip archive; give a dataset folder or a "
                ".tar, .tar.gz, .tgz, .tar.bz2, .tar.xz or .zip file"
            )

    def entries(self) -> Iterator[Entry]:
        """Every regular file, in storage order (sorted for folders)."""
        if self.kind == "folder":
            return self._folder_entries()
        if self.kind == "zip":
            return self._zip_entries()
        return self._tar_entries()

    def _too_big(self, name: str, size: int) -> bool:
        limit = max_member_bytes()
        if size > limit:
            self.on_problem(name, f"file is {size:,} bytes, over the {limit:,}-byte limit: skipped")
            return True
        return False

    def _folder_entries(self) -> Iterator[Entry]:
        root = str(self.path)
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            prefix = os.path.relpath(dirpath, root).replace(os.sep, "/")
            prefix = "" if prefix == "." else prefix + "/"
            for filename in sorted(filenames):
                full = os.path.join(dirpath, filename)
                rel = prefix + filename
                try:
                    st = os.stat(full)
                except OSError as exc:
                    self.on_problem(rel, f"cannot read: {exc.strerror}")
                    continue
                if not stat.S_ISREG(st.st_mode) or self._too_big(rel, st.st_size):
                    continue
                yield Entry(rel, st.st_size, partial(_read_file, full))

    def _zip_entries(self) -> Iterator[Entry]:
        with zipfile.ZipFile(self.path) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                reason = _unsafe_reason(info.filename)
                mode = info.external_attr >> 16
                if reason is None and stat.S_ISLNK(mode):
                    reason = "symbolic link in archive: refused"
                if reason:
                    self.on_problem(info.filename, reason)
                    continue
                if self._too_big(info.filename, info.file_size):
                    continue
                yield Entry(_clean(info.filename), info.file_size, lambda info=info: archive.read(info))

    def _refused(self, name: str, kind: str, size: int) -> bool:
        """Report and refuse a member that is not a safe regular file of acceptable size."""
        reason = _unsafe_reason(name) or _REFUSED_KINDS.get(kind)
        if reason:
            self.on_problem(name, reason)
            return True
        return self._too_big(name, size)

    def _tar_entries(self) -> Iterator[Entry]:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 (closed by the with below)
        except OSError as exc:
            raise InputError(f"cannot read archive {self.path}: {exc.strerror}") from None
        with handle:
            if handle.read(6).startswith(_COMPRESSED):
                handle.seek(0)
                yield from self._tarfile_entries(handle)
            else:
                handle.seek(0)
                yield from self._plain_tar_entries(handle)

    def _plain_tar_entries(self, handle: BinaryIO) -> Iterator[Entry]:
        """An uncompressed tar's plain headers, read here (tarfile spends most of an import's reading
        time on them); from the first header of any other kind on, tarfile reads the rest."""
        while True:
            offset = handle.tell()
            block = handle.read(512)
            if not block or block == _ZERO_BLOCK:
                return
            header = _plain_header(block)
            if header is None:
                handle.seek(offset)
                yield from self._tarfile_entries(handle)
                return
            name, size, kind = header
            start = offset + 512
            following = start + (size + 511) // 512 * 512
            if kind != "dir" and not self._refused(name, kind, size):

                def read(name: str = name, start: int = start, size: int = size) -> bytes:
                    if handle.tell() != start:
                        handle.seek(start)
                    data = handle.read(size)
                    if len(data) != size:
                        raise InputError(f"archive {self.path.name} is truncated at {name}")
                    return data

                yield Entry(_clean(name), size, read)
            handle.seek(following)

    def _tarfile_entries(self, handle: BinaryIO) -> Iterator[Entry]:
        offset = handle.tell()
        try:
            archive = tarfile.open(fileobj=handle, mode="r|*")  # noqa: SIM115 (closed by the with below)
        except (tarfile.TarError, OSError, EOFError) as exc:
            where = f" at byte {offset}" if offset else ""
            raise InputError(f"archive {self.path.name} is damaged{where} ({exc})") from None
        with archive:
            while True:
                try:
                    member = archive.next()
                except (tarfile.TarError, OSError, EOFError, Exception) as exc:
                    raise InputError(f"archive {self.path.name} is damaged or truncated ({exc})") from None
                if member is None:
                    return
                archive.members.clear()  # stream mode keeps every header otherwise; memory stays flat
                if member.isdir():
                    continue
                kind = (
                    "file"
                    if member.isreg()
                    else "symlink"
                    if member.issym()
                    else "hardlink"
                    if member.islnk()
                    else "special"
                )
                if self._refused(member.name, kind, member.size):
                    continue

                def read(member: tarfile.TarInfo = member) -> bytes:
                    try:
                        if member.type in _PLAIN_FILE and archive.fileobj.tell() == member.offset_data:
                            # a plain file's bytes follow its header: read them from the stream
                            # (extractfile builds two file objects per member); next() skips the padding
                            data = archive.fileobj.read(member.size)
                        else:
                            data = archive.extractfile(member).read()
                    except (tarfile.TarError, OSError, EOFError) as exc:
                        raise InputError(f"archive {self.path.name} is damaged at {member.name} ({exc})") from None
                    if len(data) != member.size:
                        raise InputError(f"archive {self.path.name} is truncated at {member.name}")
                    return data

                yield Entry(_clean(member.name), member.size, read)


_REFUSED_KINDS = {
    "symlink": "symbolic link in archive: refused",
    "hardlink": "hard link in archive: refused",
    "special": "special file (device or pipe) in archive: refused",
}
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
_ZERO_BLOCK = bytes(512)
_PLAIN_KINDS = {
    b"0": "file",
    b"\x00": "file",
    b"7": "file",
    b"5": "dir",
    b"1": "hardlink",
    b"2": "symlink",
    b"3": "special",
    b"4": "special",
    b"6": "special",
}


def _plain_header(block: bytes) -> tuple[str, int, str] | None:
    """(name, size, kind) of a plain ustar/GNU/v7 header; ``None`` for anything else (pax and GNU
    long-name records, base-256 sizes, a bad checksum), which tarfile then reads and judges."""
    kind = _PLAIN_KINDS.get(block[156:157])
    if kind is None or block[124] & 0x80 or block[148] & 0x80:
        return None
    try:
        size = int(block[124:136].split(b"\x00", 1)[0].strip() or b"0", 8)
        checksum = int(block[148:156].split(b"\x00", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return None
    if checksum != sum(block[:148]) + 256 + sum(block[156:]):
        return None
    name = block[:100].split(b"\x00", 1)[0]
    if block[257:263] == b"ustar\x00":
        prefix = block[345:500].split(b"\x00", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    if kind == "file" and name.endswith(b"/"):
        kind = "dir"
    return name.decode("utf-8", "surrogateescape"), size, kind


_PLAIN_FILE = (tarfile.REGTYPE, tarfile.AREGTYPE)


def _read_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, tarfile.TarError):
        return False
