"""Where photos, the database and outputs live, and which CLIP model to use: environment variables with
documented defaults (the CLIP ones, ``IQC_CLIP*``, are listed in :mod:`iqc_dagster.core.clip`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from iqc_dagster.core.clip import ClipSettings

ENV_PHOTO_ROOT = "IQC_PHOTO_ROOT"
ENV_DB = "IQC_DB"
ENV_OUTPUT_DIR = "IQC_OUTPUT_DIR"

DEFAULT_PHOTO_ROOT = "data/albums"
DEFAULT_DB = "data/iqc.duckdb"
DEFAULT_OUTPUT_DIR = "output"


@dataclass(frozen=True)
class Settings:
    photo_root: str
    db_path: str
    output_dir: str
    clip: ClipSettings = field(default_factory=ClipSettings.from_env)
    #: (album name, folder) for albums named otherwise than their folder (``iqc rank --album NAME``)
    album_folders: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        env = os.environ if env is None else env
        return cls(
            photo_root=env.get(ENV_PHOTO_ROOT) or DEFAULT_PHOTO_ROOT,
            db_path=env.get(ENV_DB) or DEFAULT_DB,
            output_dir=env.get(ENV_OUTPUT_DIR) or DEFAULT_OUTPUT_DIR,
            clip=ClipSettings.from_env(env),
        )
