"""Where photos, the database and outputs live, and which CLIP model to use: environment variables with
documented defaults (the CLIP ones, ``IQC_CLIP*``, are listed in :mod:`iqc_dagster.core.clip`).

Relative paths (the defaults included) are anchored to the current directory once, when the settings are
created (:func:`anchor`): every later step, log line and metadata entry names the same absolute path, and
an absolute path is kept as given."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from iqc_dagster.core.clip import ClipSettings

ENV_PHOTO_ROOT = "IQC_PHOTO_ROOT"
ENV_DB = "IQC_DB"
ENV_OUTPUT_DIR = "IQC_OUTPUT_DIR"
ENV_DB_LOCK_TIMEOUT = "IQC_DB_LOCK_TIMEOUT"

DEFAULT_PHOTO_ROOT = "data/albums"
DEFAULT_DB = "data/iqc.duckdb"
DEFAULT_OUTPUT_DIR = "output"
DEFAULT_DB_LOCK_TIMEOUT_S = 60.0


def anchor(path: str) -> str:
    """``path`` made absolute against the current directory (``~`` expanded); ``:memory:`` (a DuckDB
    in-memory database) and the empty string are left alone."""
    if path in ("", ":memory:"):
        return path
    return os.path.abspath(os.path.expanduser(path))


def _seconds(value: str | None, default: float) -> float:
    try:
        return max(0.0, float(value)) if value not in (None, "") else default
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    photo_root: str
    db_path: str
    output_dir: str
    clip: ClipSettings = field(default_factory=ClipSettings.from_env)
    #: (album name, folder) for albums named otherwise than their folder (``iqc rank --album NAME``)
    album_folders: tuple[tuple[str, str], ...] = ()
    #: seconds to wait for a DuckDB file locked by another process (IQC_DB_LOCK_TIMEOUT)
    db_lock_timeout_s: float = DEFAULT_DB_LOCK_TIMEOUT_S

    def __post_init__(self) -> None:
        # anchored once, here (also for dataclasses.replace): relative paths mean the current directory now
        for name in ("photo_root", "db_path", "output_dir"):
            object.__setattr__(self, name, anchor(getattr(self, name)))
        object.__setattr__(self, "album_folders", tuple((a, anchor(f)) for a, f in self.album_folders))

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        env = os.environ if env is None else env
        return cls(
            photo_root=env.get(ENV_PHOTO_ROOT) or DEFAULT_PHOTO_ROOT,
            db_path=env.get(ENV_DB) or DEFAULT_DB,
            output_dir=env.get(ENV_OUTPUT_DIR) or DEFAULT_OUTPUT_DIR,
            clip=ClipSettings.from_env(env),
            db_lock_timeout_s=_seconds(env.get(ENV_DB_LOCK_TIMEOUT), DEFAULT_DB_LOCK_TIMEOUT_S),
        )
