"""Find albums and photos on disk, and describe each photo (hash, size, EXIF) without decoding it.

Photos are only ever opened for reading. A file whose size and modification time are unchanged since
the last scan keeps its previous row, so re-scanning an unchanged album reads no file contents.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from iqc_dagster.core import imaging, names, raw

Progress = Callable[[int, int], None]

NOT_REGULAR_REASON = "not a regular file"
#: Statuses of a photo that was read: scored (``ok``), or the other file of a RAW + JPEG shot scored with
#: its partner; every other row is unreadable, with a reason.
READABLE_STATUSES = ("ok", raw.COMPANION_STATUS)


def unreadable(photos: pd.DataFrame) -> pd.Series:
    """Mask of the inventory rows that could not be read (neither scored nor a shot's companion)."""
    return ~photos["status"].isin(READABLE_STATUSES)


class AlbumError(ValueError):
    """An album name or folder that cannot be used; ``str(exc)`` is a one-line message for users."""


def validate_album_name(name: str) -> str:
    """``name`` if it is an album key (:func:`names.to_key` of one folder name), else :class:`AlbumError`.

    Album keys become Dagster partition keys and output file names: every folder name has one (leading
    and trailing spaces, newlines, non-UTF-8 bytes included); a key never holds a separator or a control
    character, and is never "." or "..".
    """
    if (not name or name in (".", "..") or "/" in name or "\x00" in name
            or not names.is_key(name, album=True) or len(names.from_key(name).encode("utf-8", "surrogateescape")) > 255):
        raise AlbumError(f"invalid album name {names.display(name)!r}: use a plain folder name directly under "
                         f"the photo root")
    return name


def album_key(folder_name: str) -> str:
    """The album key of a folder name (see :mod:`iqc_dagster.core.names`)."""
    return names.to_key(folder_name, album=True)


def album_dir(photo_root: str | os.PathLike, album: str) -> Path:
    """The folder of ``album`` (a key) under ``photo_root``; refuses names that would escape the root."""
    validate_album_name(album)
    root = Path(photo_root).resolve()
    d = (root / names.from_key(album)).resolve()
    if d.parent != root:
        raise AlbumError(f"album {names.display(album)!r} resolves outside the photo root {names.display(root)}")
    return d


@dataclass
class RootListing:
    albums: list[str] = field(default_factory=list)  # album keys
    hidden: list[str] = field(default_factory=list)  # keys of folders whose name starts with "."
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)


def scan_root(photo_root: str | os.PathLike) -> RootListing:
    """The album folders directly under ``photo_root`` (their keys), and those left out, with why.

    Hidden folders (a leading dot: ``.thumbnails``, ``.Trash-1000``, ``.git``) are not albums unless
    named explicitly (``iqc run --album .x``, ``iqc rank --input-dir``); they are listed so callers can
    say so. Symbolic links are not followed.
    """
    root = Path(photo_root)
    if not root.is_dir():
        raise AlbumError(f"photo root {names.display(root)} is not a directory")
    out = RootListing()
    try:
        entries = sorted(os.scandir(root), key=lambda e: os.fsencode(e.name))
    except OSError as exc:
        raise AlbumError(f"photo root {names.display(root)} cannot be read: {exc.strerror or exc}") from None
    for entry in entries:
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        key = album_key(entry.name)
        if entry.name.startswith("."):
            out.hidden.append(key)
        elif not os.access(entry.path, os.R_OK | os.X_OK):
            out.unreadable.append((key, "permission denied"))
        else:
            out.albums.append(key)
    return out


def list_albums(photo_root: str | os.PathLike) -> list[str]:
    """Keys of the album folders directly under ``photo_root`` (hidden folders left out)."""
    return scan_root(photo_root).albums


def walk_album(folder: str | os.PathLike) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """``(files, problems)``: ``(key of the relative posix path, absolute path)`` of every photo and RAW
    file under ``folder``, sorted by key; and ``(key + "/", reason)`` for each sub-folder that could
    not be listed (its photos would otherwise vanish without a word).

    Sub-folders are included; symbolic links to folders are not followed (no loops); hidden files and
    folders and other extensions are ignored.
    """
    folder = Path(folder)
    found = []
    problems: list[tuple[str, str]] = []

    def onerror(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else folder
        rel = where.relative_to(folder).as_posix() if where != folder else "."
        problems.append((names.to_key(rel) + "/", f"folder cannot be read: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if imaging.is_image_name(name) or imaging.is_raw_name(name):
                p = Path(dirpath) / name
                found.append((names.to_key(p.relative_to(folder).as_posix()), p))
    found.sort(key=lambda t: t[0])
    problems.sort()
    return found, problems


def list_photo_files(folder: str | os.PathLike) -> list[tuple[str, Path]]:
    """The files of :func:`walk_album` (photos and RAW files), without the folder problems."""
    return walk_album(folder)[0]


def album_fingerprint(folder: str | os.PathLike) -> str:
    """A digest of every photo's (path, size, mtime): changes when photos are added, edited, removed,
    renamed or moved, without reading any file contents."""
    import hashlib

    h = hashlib.blake2b(digest_size=12)
    n = 0
    for rel, p in list_photo_files(folder):
        try:
            st = p.stat()
        except OSError:
            st = None
        h.update(f"{rel}\0{st.st_size if st else -1}\0{st.st_mtime_ns if st else -1}\n".encode())
        n += 1
    return f"{n}:{h.hexdigest()}"


def folder_state(folder: str | os.PathLike) -> str:
    """A digest of the modification times of ``folder`` and each of its sub-folders (hidden ones and
    links left out): changes when a photo is added, removed or renamed anywhere in the album, at the cost
    of one listing and one ``stat`` per folder, none per photo. A photo rewritten in place under the
    same name changes no folder (see :func:`album_fingerprint`). Raises ``OSError`` when ``folder``
    itself cannot be read (e.g. it was just removed)."""
    import hashlib

    root = Path(folder)
    h = hashlib.blake2b(digest_size=12)
    n = 0
    stack = [root]
    while stack:
        d = stack.pop()
        rel = d.relative_to(root).as_posix()
        try:
            mtime = d.stat().st_mtime_ns
            with os.scandir(d) as it:
                subs = sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir(follow_symlinks=False))
        except OSError:
            if d == root:
                raise
            h.update(f"{names.to_key(rel)}\0unreadable\n".encode())
            continue
        h.update(f"{names.to_key(rel)}\0{mtime}\n".encode())
        n += 1
        stack.extend(d / s for s in reversed(subs))
    return f"{n}:{h.hexdigest()}"


def _describe(rel: str, path: Path, old: dict | None, row: dict) -> dict:
    """Fill ``row`` for one file: reuse ``old`` when size and mtime match, else probe and hash it."""
    try:
        st = path.stat()
        row["bytes"], row["mtime_ns"] = st.st_size, st.st_mtime_ns
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read; /dev/zero never ends
            row.update(status="unreadable", reason=NOT_REGULAR_REASON)
        elif (old is not None and old["status"] in READABLE_STATUSES and old["bytes"] == st.st_size
                and old["mtime_ns"] == st.st_mtime_ns
                and str(old["content_hash"] or "").startswith(imaging.CONTENT_HASH_PREFIX)):
            row.update({k: old[k] for k in ("content_hash", "width", "height", "format",
                                             "orientation", "captured_at")})
        elif st.st_size == 0:
            row.update(status="unreadable", reason="empty file (0 bytes)")
        else:
            info = imaging.probe(path)
            row.update(content_hash=imaging.hash_file(path), width=info.width, height=info.height,
                       format=info.format, orientation=info.orientation, captured_at=info.captured_at)
    except imaging.UnreadableImage as exc:
        row.update(status="unreadable", reason=str(exc))
    except OSError as exc:
        row.update(status="unreadable", reason=f"cannot read: {exc.strerror or exc}")
    return row


def scan_album(folder: str | os.PathLike, album: str, previous: pd.DataFrame | None = None,
               progress: Progress | None = None, scanned_at=None, workers: int | None = None) -> pd.DataFrame:
    """One inventory row per photo file (see ``store.PHOTO_COLUMNS``); unreadable files get a reason.

    ``previous`` is the album's last inventory: rows whose size and mtime match are reused as they are.
    New or changed files are hashed and probed in a thread pool (hashing and file reads release the GIL).
    """
    from concurrent.futures import ThreadPoolExecutor

    prev = {}
    if previous is not None and not previous.empty:
        prev = {r["path"]: r for r in previous.to_dict("records")}
    files, problems = walk_album(folder)

    def one(item):
        rel, path = item
        row = {"album": album, "path": rel, "content_hash": None, "bytes": None, "mtime_ns": None,
               "width": None, "height": None, "format": None, "orientation": None, "captured_at": None,
               "status": "ok", "reason": None, "scanned_at": scanned_at}
        return _describe(rel, path, prev.get(rel), row)

    rows = []
    from iqc_dagster.core.files import cpu_workers

    with ThreadPoolExecutor(max_workers=workers or cpu_workers(),
                            thread_name_prefix="iqc-inventory") as pool:
        for i, row in enumerate(pool.map(one, files), 1):
            rows.append(row)
            if progress:
                progress(i, len(files))
    by_path = {r["path"]: r for r in rows}
    for companion, primary in raw.pair_companions(rows, prev).items():  # RAW + JPEG of one shot: scored once
        by_path[companion].update(status=raw.COMPANION_STATUS, reason=f"same shot as {primary} (RAW + JPEG): scored once, with it")
    for rel, reason in problems:
        rows.append({"album": album, "path": rel, "content_hash": None, "bytes": None, "mtime_ns": None,
                     "width": None, "height": None, "format": None, "orientation": None, "captured_at": None,
                     "status": "unreadable", "reason": reason, "scanned_at": scanned_at})
    df = pd.DataFrame(rows, columns=["album", "path", "content_hash", "bytes", "mtime_ns", "width", "height",
                                     "format", "orientation", "captured_at", "status", "reason", "scanned_at"])
    df["captured_at"] = pd.to_datetime(df["captured_at"])
    return df
