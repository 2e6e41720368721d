"""File and album names as iqc stores, shows and reads them.

A Linux file name is any bytes but ``/`` and NUL. Python hands names that are not valid UTF-8 over with
*surrogate escapes* (``caf\\udce9.jpg`` for the Latin-1 bytes ``caf\\xe9.jpg``), which DuckDB, Dagster
partition keys, UTF-8 CSVs and terminals cannot take. Every name therefore has a **key**: a printable,
valid UTF-8 string that iqc stores (database rows, partition keys, CSV ``file``/``path`` columns, log
lines), and that maps back to the real name exactly (:func:`from_key`) for reading the file.

* A name without a backslash, without control characters and whose bytes are valid UTF-8 is its own key
  (nearly every name: nothing changes for them).
* Any other name is *escaped*: ``\\`` becomes ``\\\\``, every byte that is not valid UTF-8 and every
  control character (C0 and DEL) becomes ``\\xNN``. An album key also escapes the third dot of ``...``
  (``\\x2e``), a substring Dagster refuses in partition keys.

The keys of escaped names always contain a backslash and those of plain names never do, and escaping is
undone by :func:`from_key`, so two different names never share a key. The cost: a name holding a
backslash is shown with it doubled.
"""

from __future__ import annotations

import hashlib
import os
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ESCAPE = re.compile(r"\\(?:\\|x([0-9a-f]{2}))")
#: What :func:`display` escapes besides the key's own escapes: C1 controls and bidirectional overrides,
#: which recolour or reorder a terminal line.
_UNPRINTABLE = re.compile("[\x80-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: Longest output file stem, in UTF-8 bytes: leaves room for ``_skipped.csv`` and temporary names in
#: the 255-byte limit of most file systems.
MAX_STEM_BYTES = 200


def _needs_escape(name: str, album: bool) -> bool:
    if "\\" in name or _CONTROL.search(name) or (album and "..." in name):
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes: bytes that are not UTF-8
        return True
    return False


def to_key(name: str | os.PathLike, *, album: bool = False) -> str:
    """The key of ``name`` (a file name, a relative or absolute path, or an album folder name)."""
    name = os.fspath(name)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if not _needs_escape(name, album):
        return name
    raw = os.fsencode(name).replace(b"\\", b"\\\\")
    out = raw.decode("utf-8", "backslashreplace")  # invalid bytes -> \xNN
    out = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", out)
    if album:
        while "..." in out:
            out = out.replace("...", "..\\x2e", 1)
    return out


def from_key(key: str) -> str:
    """The real name (with surrogate escapes where its bytes are not UTF-8) behind a key."""
    if "\\" not in key:
        return key
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(key):
        out += key[pos:m.start()].encode("utf-8", "surrogateescape")
        out += b"\\" if m.group(1) is None else bytes([int(m.group(1), 16)])
        pos = m.end()
    out += key[pos:].encode("utf-8", "surrogateescape")
    return os.fsdecode(bytes(out))


def is_key(key: str, *, album: bool = False) -> bool:
    """True when ``key`` is exactly what :func:`to_key` makes of some name."""
    try:
        return to_key(from_key(key), album=album) == key
    except (UnicodeError, ValueError):
        return False


def real_path(path: str | os.PathLike) -> str:
    """A path read from a CSV or the database, as the file system knows it: the path itself when it
    exists (a CSV written by hand or by another tool), else the name behind its key."""
    p = os.fspath(path)
    if "\\" in p and not os.path.lexists(p):
        return from_key(p)
    return p


def display(text: object) -> str:
    """``text`` safe to print on a terminal: keys as they are, anything else escaped (surrogates,
    control characters, C1 controls, bidirectional overrides), always one line."""
    s = str(text)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    s = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", s)
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", s)


def file_stem(album: str) -> str:
    """The stem of an album's output files (``<stem>.csv``, ``<stem>_skipped.csv``, reports/<stem>/):
    the album key itself when it is short and not hidden, else a shortened, visible form plus a hash of
    the whole key, so two albums never share output files."""
    raw = album.encode("utf-8", "surrogateescape")
    if len(raw) <= MAX_STEM_BYTES and not album.startswith(".") and album not in ("", "..", "."):
        return album
    digest = hashlib.blake2b(raw, digest_size=5).hexdigest()
    head = album.lstrip(".") or "album"
    head = head.encode("utf-8", "surrogateescape")[:MAX_STEM_BYTES - 12].decode("utf-8", "ignore")
    return f"{head}~{digest}"
