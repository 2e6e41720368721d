"""Resources: where the photos, database and outputs are, and the CLIP model (environment variables,
overridable in run config)."""


import contextlib
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from iqc_dagster.core import clip as clipcore
from iqc_dagster.core import inventory, names, ranking, store
from iqc_dagster.core import config
from iqc_dagster.core.config import Settings
from iqc_dagster.defs.keys import DUCKDB_POOL

__all__ = ["DUCKDB_POOL", "INSTANCE_SETTINGS", "ClipModels", "ClipResource", "IQCSettings", "make_resources", "db"]

#: The Dagster instance settings iqc needs: the one slot of the DuckDB pool (the steps that write the
#: database claim it, so runs of different albums take turns for the single-writer file while their
#: analysis overlaps). ``dagster.yaml`` at the repository root holds exactly this (plain ``dagster dev``
#: started there reads it); ``iqc ui`` writes it into its ``DAGSTER_HOME``. ``dagster.yaml`` cannot name
#: a pool, so the limit is the default one; iqc_duckdb is the code location's only pool (a test keeps it so).
INSTANCE_SETTINGS = {
    "concurrency": {"pools": {"default_limit": 1, "granularity": "op"}},
    "telemetry": {"enabled": False},
}


class IQCSettings(dg.ConfigurableResource):
    """Paths used by the pipeline. Defaults come from IQC_PHOTO_ROOT and IQC_OUTPUT_DIR (read through
    ``dg.EnvVar`` when set to an absolute path, so the UI shows them as environment-sourced; relative
    paths are anchored to the current directory when the settings are made, see
    :func:`iqc_dagster.core.config.anchor`).

    Paths are held as name keys (:mod:`iqc_dagster.core.names`: config must be valid UTF-8) and turned
    back into real paths here. ``album_folders`` maps album names to folders outside the photo root
    (``iqc rank --album NAME``)."""

    photo_root: str
    output_dir: str
    album_folders: dict[str, str] = {}

    def root_dir(self) -> Path:
        return Path(config.anchor(names.from_key(self.photo_root)))

    def out_dir(self) -> Path:
        return Path(config.anchor(names.from_key(self.output_dir)))

    def album_dir(self, album: str) -> Path:
        if album in self.album_folders:
            return Path(config.anchor(names.from_key(self.album_folders[album])))
        return inventory.album_dir(self.root_dir(), album)

    def csv_path(self, album: str) -> Path:
        return ranking.csv_path(self.out_dir(), album)

    def skipped_csv_path(self, album: str) -> Path:
        return ranking.skipped_csv_path(self.csv_path(album))


class ClipModels(dg.ConfigurableResource):
    """The loaded CLIP model's lifetime: created empty when a run starts, dropped when it ends. The
    in-process runner (``iqc run``) passes one :class:`~iqc_dagster.core.clip.ModelCache` to all its
    album runs instead, so the model loads once per command."""

    _cache: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._cache = clipcore.ModelCache()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._cache is not None:
            self._cache.clear()

    @property
    def cache(self) -> clipcore.ModelCache:
        if self._cache is None:  # used outside a run (a test calling an asset function directly)
            self._cache = clipcore.ModelCache()
        return self._cache


#: The defaults of every CLIP setting, declared once (iqc_dagster.core.clip.settings.ClipSettings).
_CLIP = clipcore.ClipSettings()


class ClipResource(dg.ConfigurableResource):
    """The CLIP model behind ``clip_embeddings`` and ``aesthetic_scores``.

    Defaults come from IQC_CLIP (off with 0), IQC_CLIP_MODEL, IQC_CLIP_DEVICE, IQC_CLIP_BATCH_SIZE,
    IQC_CLIP_POSITIVE / IQC_CLIP_NEGATIVE ("|"-separated prompts), IQC_CLIP_DOWNLOAD and
    IQC_CLIP_PRECISION. A run never fails for want of a model: without one, aesthetic scoring is skipped
    and says why (docs/clip.md).
    """

    # the fields of ClipSettings, as run config (the Launchpad); a test keeps the two lists equal
    enabled: bool = _CLIP.enabled
    model: str = _CLIP.model  # Hugging Face id (must be in the local cache) or a local folder
    device: str = _CLIP.device
    batch_size: int = _CLIP.batch_size
    positive_prompts: list[str] = list(_CLIP.positive_prompts)
    negative_prompts: list[str] = list(_CLIP.negative_prompts)
    allow_download: bool = _CLIP.allow_download  # let a run download a hub model missing from the cache
    precision: str = _CLIP.precision  # image tower: auto (bf16 on CPUs with AMX, else fp32) | fp32 | bf16
    #: where the loaded model lives: a ClipModels resource (per run), or a shared ModelCache
    models: dg.ResourceDependency[Any]

    @classmethod
    def from_settings(cls, s: clipcore.ClipSettings, models=None) -> "ClipResource":
        """``models``: a :class:`~iqc_dagster.core.clip.ModelCache` shared across runs, else one per run."""
        models = dg.ResourceDefinition.hardcoded_resource(models) if models is not None else ClipModels()
        values = {f.name: getattr(s, f.name) for f in dataclasses.fields(s)}
        return cls(**{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}, models=models)

    def settings(self) -> clipcore.ClipSettings:
        """The run's CLIP settings (validated: prompts, batch size, precision)."""
        return clipcore.ClipSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(clipcore.ClipSettings)})

    def resolve(self) -> clipcore.ModelSource:
        """Where the model is, or why there is none (no network, milliseconds)."""
        return clipcore.resolve_model(self.settings())

    def load(self, source: clipcore.ModelSource) -> clipcore.LoadedClip:
        """The loaded model (loaded once per run, or per ``iqc`` command); raises ``clip.ClipLoadError``
        with a one-line reason."""
        cache = self.models.cache if isinstance(self.models, ClipModels) else self.models
        return cache.get(source, self.device, self.settings().precision)


@contextlib.contextmanager
def db(duckdb: DuckDBResource):
    """A DuckDB connection with the schema ensured, always closed afterwards (also on error).

    Another process holding the file (a second run, or a program such as the DuckDB CLI) is waited for
    with a bounded back-off (``IQCDuckDBResource.lock_timeout_s``); after that the step fails with one
    plain sentence naming the process that holds the lock.
    """
    path = Path(duckdb.database)
    if duckdb.database != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.get_connection() as conn:
        try:
            store.ensure_schema(conn)
            yield conn
        finally:
            conn.close()


class DatabaseLocked(RuntimeError):
    """The DuckDB file stayed locked by another process for longer than the lock timeout."""


class NotADuckDBFile(RuntimeError):
    """IQC_DB names a file that is not a DuckDB database (e.g. a SQLite file)."""


class IQCDuckDBResource(DuckDBResource):
    """``DuckDBResource`` whose connection waits a bounded time for a file locked by another process."""

    lock_timeout_s: float = 60.0

    @contextlib.contextmanager
    def get_connection(self):
        import duckdb as _duckdb

        config = {"custom_user_agent": "dagster", **store.CONNECTION_CONFIG, **self.connection_config}
        bad = store.not_duckdb_message(self.database)
        if bad:
            raise NotADuckDBFile(bad)
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                conn = _duckdb.connect(database=self.database, read_only=False, config=config)
                break
            except _duckdb.IOException as exc:
                if not store.is_lock_error(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise DatabaseLocked(store.lock_message(exc, self.database, self.lock_timeout_s)) from None
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 1.0)
        try:
            yield conn
        finally:
            conn.close()


def _from_env(name: str, value: str, env=None) -> Any:
    """``dg.EnvVar(name)`` when the environment sets ``name`` to exactly ``value`` (the UI then shows the
    field as environment-sourced), else ``value`` itself: the default, a relative path (anchored here,
    once, so the run cannot resolve it against another directory) or a path that is not valid UTF-8
    (held as its name key)."""
    env = os.environ if env is None else env
    raw = env.get(name)
    if raw and names.to_key(raw) == raw and raw == names.from_key(value):
        return dg.EnvVar(name)
    return value


def make_resources(settings: Settings | None = None, clip_models: clipcore.ModelCache | None = None) -> dict:
    """The code location's resources, from ``settings`` (default: the environment, the paths set there
    read through ``dg.EnvVar``). ``clip_models``: a model cache shared by several runs in this process
    (``iqc run``); default: one per run."""
    from_env = settings is None
    settings = settings or Settings.from_env()
    photo_root, output_dir, db_path = (names.to_key(settings.photo_root), names.to_key(settings.output_dir),
                                       settings.db_path)
    if from_env:
        photo_root = _from_env(config.ENV_PHOTO_ROOT, photo_root)
        output_dir = _from_env(config.ENV_OUTPUT_DIR, output_dir)
        db_path = _from_env(config.ENV_DB, db_path)
    return {
        "iqc": IQCSettings(photo_root=photo_root, output_dir=output_dir,
                           album_folders={a: names.to_key(f) for a, f in settings.album_folders}),
        "clip": ClipResource.from_settings(settings.clip, clip_models),
        "duckdb": IQCDuckDBResource(database=db_path, lock_timeout_s=settings.db_lock_timeout_s),
    }
