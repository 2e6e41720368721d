"""Find albums and photos on disk, and describe each photo (hash, size, EXIF) without decoding it.

Photos are only ever opened for reading. A file whose size and modification time are unchanged since
the last scan keeps its previous row, so re-scanning an unchanged album reads no file contents.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from iqc_dagster.core import imaging

Progress = Callable[[int, int], None]

# Album names become Dagster partition keys and file-system paths: one plain folder name, no
# separators, no control characters, not "." or "..", not hidden.
_BAD_ALBUM = re.compile(r"[\x00-\x1f\x7f/\\]")


class AlbumError(ValueError):
    """An album name or folder that cannot be used; ``str(exc)`` is a one-line message for users."""


def validate_album_name(name: str) -> str:
    if not name or name in (".", "..") or name.startswith(".") or _BAD_ALBUM.search(name) \
            or name != name.strip() or len(name) > 255:
        raise AlbumError(f"invalid album name {name!r}: use a plain folder name directly under the photo root")
    return name


def album_dir(photo_root: str | os.PathLike, album: str) -> Path:
    """The folder of ``album`` under ``photo_root``; refuses names that would escape the root."""
    validate_album_name(album)
    root = Path(photo_root).resolve()
    d = (root / album).resolve()
    if d.parent != root:
        raise AlbumError(f"album {album!r} resolves outside the photo root {root}")
    return d


def list_albums(photo_root: str | os.PathLike) -> list[str]:
    """Names of the album folders directly under ``photo_root`` (hidden and invalid names skipped)."""
    root = Path(photo_root)
    if not root.is_dir():
        raise AlbumError(f"photo root {root} is not a directory")
    out = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        try:
            if entry.is_dir(follow_symlinks=False):
                validate_album_name(entry.name)
                out.append(entry.name)
        except (AlbumError, OSError):
            continue
    return out


def list_photo_files(folder: str | os.PathLike) -> list[tuple[str, Path]]:
    """``(relative posix path, absolute path)`` of every photo file under ``folder``, sorted.

    Sub-folders are included; symbolic links to folders are not followed (no loops); hidden files
    and non-photo extensions are ignored.
    """
    folder = Path(folder)
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if imaging.is_image_name(name):
                p = Path(dirpath) / name
                found.append((p.relative_to(folder).as_posix(), p))
    found.sort(key=lambda t: t[0])
    return found


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


def _describe(rel: str, path: Path, old: dict | None, row: dict) -> dict:
    """Fill ``row`` for one file: reuse ``old`` when size and mtime match, else probe and hash it."""
    try:
        st = path.stat()
        row["bytes"], row["mtime_ns"] = st.st_size, st.st_mtime_ns
        if (old is not None and old["status"] == "ok" and old["bytes"] == st.st_size
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
    files = list_photo_files(folder)

    def one(item):
        rel, path = item
        row = {"album": album, "path": rel, "content_hash": None, "bytes": None, "mtime_ns": None,
               "width": None, "height": None, "format": None, "orientation": None, "captured_at": None,
               "status": "ok", "reason": None, "scanned_at": scanned_at}
        return _describe(rel, path, prev.get(rel), row)

    rows = []
    with ThreadPoolExecutor(max_workers=workers or max(1, min(4, os.cpu_count() or 1)),
                            thread_name_prefix="iqc-inventory") as pool:
        for i, row in enumerate(pool.map(one, files), 1):
            rows.append(row)
            if progress:
                progress(i, len(files))
    df = pd.DataFrame(rows, columns=["album", "path", "content_hash", "bytes", "mtime_ns", "width", "height",
                                     "format", "orientation", "captured_at", "status", "reason", "scanned_at"])
    df["captured_at"] = pd.to_datetime(df["captured_at"])
    return df
