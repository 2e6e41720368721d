"""DuckDB schema and queries. Every value goes in as a bound parameter or a registered DataFrame.

Keys:
* ``photos``            (album, path)                    — the inventory, one row per file in an album
* ``feature_values``    (content_hash, feature, version) — raw measurements, shared across albums/renames
* ``normalized_scores`` (album, path, score)             — calibrated [0, 1] scores per photo
* ``rankings``          (album, path)                    — final score and rank, with the weights used
* ``weights``           (weights_id)                     — every weight set that produced a ranking
* ``ranking_weights``   (one row)                        — the weights the ``ranking_weights`` asset chose:
                                                           what every ranking made now uses
* ``tuned_weights``     (one row per tuning run)         — ``iqc tune`` results, held-out agreement included
* ``clip_embeddings``   (content_hash, model_id)         — CLIP image embeddings (FLOAT[]), shared across albums
* ``clip_text_embeddings`` (model_id, prompt)            — CLIP text embeddings of the aesthetic prompts
* ``clip_models``       (model_id)                       — each CLIP model used: source, dimension, logit scale
* ``album_folders``     (album)                          — the folder an album name stands for (two
                                                           folders of one name are not mixed up)
* ``aesthetic_status``  (album)                          — whether the album's aesthetic scores were computed,
                                                           with which model and prompts, or why not

``normalized_scores`` has two writers: ``normalized_features`` owns every score but ``aesthetic``, and
``aesthetic_scores`` owns ``aesthetic`` (:func:`replace_album_scores`), so neither erases the other.

Per-album writes delete the album's rows and insert the new ones in one short transaction, so a re-run
replaces rather than duplicates, and a run killed mid-way leaves the previous rows intact.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterable, Mapping

import duckdb
import pandas as pd

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS photos (
        album VARCHAR NOT NULL, path VARCHAR NOT NULL, content_hash VARCHAR,
        bytes BIGINT, mtime_ns BIGINT, width INTEGER, height INTEGER, format VARCHAR,
        orientation INTEGER, captured_at TIMESTAMP, status VARCHAR NOT NULL, reason VARCHAR,
        scanned_at TIMESTAMP, PRIMARY KEY (album, path))""",
    """CREATE TABLE IF NOT EXISTS feature_values (
        content_hash VARCHAR NOT NULL, feature VARCHAR NOT NULL, version VARCHAR NOT NULL,
        measures VARCHAR NOT NULL, computed_at TIMESTAMP,
        PRIMARY KEY (content_hash, feature, version))""",
    """CREATE TABLE IF NOT EXISTS normalized_scores (
        album VARCHAR NOT NULL, path VARCHAR NOT NULL, content_hash VARCHAR NOT NULL,
        score VARCHAR NOT NULL, value DOUBLE, PRIMARY KEY (album, path, score))""",
    """CREATE TABLE IF NOT EXISTS rankings (
        album VARCHAR NOT NULL, path VARCHAR NOT NULL, content_hash VARCHAR NOT NULL,
        rank INTEGER NOT NULL, final_score DOUBLE, weights_id VARCHAR, ranked_at TIMESTAMP,
        PRIMARY KEY (album, path))""",
    """CREATE TABLE IF NOT EXISTS weights (
        weights_id VARCHAR PRIMARY KEY, source VARCHAR, weights VARCHAR NOT NULL, created_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS clip_embeddings (
        content_hash VARCHAR NOT NULL, model_id VARCHAR NOT NULL, embedding FLOAT[] NOT NULL,
        computed_at TIMESTAMP, PRIMARY KEY (content_hash, model_id))""",
    """CREATE TABLE IF NOT EXISTS clip_text_embeddings (
        model_id VARCHAR NOT NULL, prompt VARCHAR NOT NULL, embedding FLOAT[] NOT NULL,
        computed_at TIMESTAMP, PRIMARY KEY (model_id, prompt))""",
    """CREATE TABLE IF NOT EXISTS clip_models (
        model_id VARCHAR PRIMARY KEY, source VARCHAR, dim INTEGER, logit_scale DOUBLE,
        registered_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS aesthetic_status (
        album VARCHAR PRIMARY KEY, status VARCHAR NOT NULL, model_id VARCHAR, prompts VARCHAR,
        message VARCHAR, n_scored INTEGER, n_missing INTEGER, updated_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS photo_hashes (
        content_hash VARCHAR NOT NULL, version VARCHAR NOT NULL, hashes VARCHAR NOT NULL,
        PRIMARY KEY (content_hash, version))""",
    """CREATE TABLE IF NOT EXISTS photo_groups (
        album VARCHAR NOT NULL, path VARCHAR NOT NULL, group_key BIGINT NOT NULL, group_kind VARCHAR,
        PRIMARY KEY (album, path))""",
    """CREATE TABLE IF NOT EXISTS album_metrics (
        album VARCHAR PRIMARY KEY, metrics VARCHAR NOT NULL, report VARCHAR, computed_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS album_folders (
        album VARCHAR PRIMARY KEY, folder VARCHAR NOT NULL, updated_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS ranking_weights (
        slot INTEGER PRIMARY KEY, weights_id VARCHAR NOT NULL, selected_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS tuned_weights (
        weights_id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, study VARCHAR NOT NULL,
        objective VARCHAR NOT NULL, weights VARCHAR NOT NULL, heldout_default DOUBLE, heldout_tuned DOUBLE,
        tune_default DOUBLE, tune_tuned DOUBLE, n_trials INTEGER, n_pairs_tune INTEGER,
        n_pairs_heldout INTEGER, details VARCHAR)""",
]

#: Passed to every DuckDB connection iqc opens: never download or load an extension by itself (a
#: database path naming a SQLite file would otherwise make DuckDB fetch its sqlite extension).
CONNECTION_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

PHOTO_COLUMNS = ["album", "path", "content_hash", "bytes", "mtime_ns", "width", "height", "format",
                 "orientation", "captured_at", "status", "reason", "scanned_at"]

_ALBUM_TABLES = frozenset({"photos", "normalized_scores", "rankings", "photo_groups"})


def not_duckdb_message(path: str) -> str | None:
    """A one-line reason when ``path`` exists but is plainly not a DuckDB database (a SQLite file,
    anything else without DuckDB's header), else None."""
    import os

    try:
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            return None
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if head.startswith(b"SQLite format 3"):
        return (f"the database {path} is a SQLite file, not a DuckDB database: point IQC_DB / --db at a "
                f".duckdb file (iqc never loads DuckDB extensions)")
    if len(head) >= 12 and head[8:12] != b"DUCK":
        return f"the database {path} is not a DuckDB database file: point IQC_DB / --db at a .duckdb file"
    return None


def is_lock_error(exc: BaseException) -> bool:
    return "lock" in str(exc).lower()


def lock_message(exc: BaseException, path: str, waited_s: float) -> str:
    """One sentence for users: which process holds the DuckDB file, and what to do."""
    import re

    m = re.search(r"held in (.+?) \(PID (\d+)\)", str(exc))
    who = f"process {m.group(2)} ({m.group(1)})" if m else "another process"
    return (f"the database {path} is locked by {who}; waited {waited_s:.0f}s. Close that program (or wait "
            f"for its run to finish), or point IQC_DB / --db at another file.")


#: Identifies the DDL above: a database stamped with it needs none of it run again.
SCHEMA_ID = hashlib.blake2b("\n".join(SCHEMA).encode(), digest_size=8).hexdigest()


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create every table (idempotent). A database already stamped with :data:`SCHEMA_ID` is left as it
    is after one small query: each step opens short connections, and the full DDL cost 18 ms a time."""
    for attempt in range(5):
        try:
            if conn.execute("SELECT id FROM iqc_schema").fetchall() == [(SCHEMA_ID,)]:
                return
        except duckdb.CatalogException:  # a new database, or one made before the stamp existed
            pass
        try:
            with transaction(conn):
                for stmt in SCHEMA:
                    conn.execute(stmt)
                conn.execute("CREATE TABLE IF NOT EXISTS iqc_schema (id VARCHAR)")
                conn.execute("DELETE FROM iqc_schema")
                conn.execute("INSERT INTO iqc_schema VALUES (?)", [SCHEMA_ID])
            return
        except duckdb.TransactionException:
            # another connection of this process is creating the schema right now: look again once it
            # has committed
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@contextlib.contextmanager
def _registered(conn, name: str, df: pd.DataFrame):
    """Expose ``df`` to SQL as view ``name`` for the duration of the block."""
    conn.register(name, df)
    try:
        yield name
    finally:
        conn.unregister(name)


@contextlib.contextmanager
def transaction(conn):
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _insert_df(conn, table: str, df: pd.DataFrame, *, or_replace: bool = False, album: str | None = None) -> None:
    """Insert ``df`` (columns by name) into ``table`` in one transaction, first deleting ``album``'s rows."""
    verb = "INSERT OR REPLACE" if or_replace else "INSERT"
    rows = df if len(df.columns) else pd.DataFrame({"_none": []})  # DuckDB cannot register a column-less frame
    with _registered(conn, "_iqc_rows", rows), transaction(conn):
        if album is not None:
            conn.execute(f"DELETE FROM {table} WHERE album = ?", [album])
        if not df.empty:
            conn.execute(f"{verb} INTO {table} BY NAME SELECT * FROM _iqc_rows")


def replace_album_rows(conn, table: str, album: str, df: pd.DataFrame) -> None:
    """Replace every row of ``album`` in ``table`` with ``df``, atomically."""
    if table not in _ALBUM_TABLES:
        raise ValueError(f"not a per-album table: {table}")
    _insert_df(conn, table, df, album=album)


# --- photos -------------------------------------------------------------------------------------

def album_photos(conn, album: str, *, only_ok: bool = False) -> pd.DataFrame:
    sql = f"SELECT {', '.join(PHOTO_COLUMNS)} FROM photos WHERE album = ?"
    if only_ok:
        sql += " AND status = 'ok'"
    return conn.execute(sql + " ORDER BY path", [album]).df()


def mark_unreadable(conn, album: str, reasons: Mapping[str, str]) -> None:
    """Set status 'unreadable' with a reason for photos (by path) that failed to decode."""
    if not reasons:
        return
    df = pd.DataFrame({"path": list(reasons), "reason": list(reasons.values())})
    with _registered(conn, "_iqc_bad", df):
        conn.execute(
            "UPDATE photos SET status = 'unreadable', reason = b.reason FROM _iqc_bad b "
            "WHERE photos.album = ? AND photos.path = b.path", [album])


# --- feature values -----------------------------------------------------------------------------

def existing_features(conn, hashes: Iterable[str], versions: Mapping[str, str]) -> set[tuple[str, str]]:
    """``(content_hash, feature)`` pairs already measured at the feature's current version."""
    hashes = list(dict.fromkeys(hashes))
    if not hashes or not versions:
        return set()
    want = pd.DataFrame({"feature": list(versions), "version": list(versions.values())})
    hs = pd.DataFrame({"content_hash": hashes})
    with _registered(conn, "_iqc_want", want), _registered(conn, "_iqc_hashes", hs):
        rows = conn.execute(
            "SELECT f.content_hash, f.feature FROM feature_values f "
            "JOIN _iqc_want w ON f.feature = w.feature AND f.version = w.version "
            "JOIN _iqc_hashes h ON f.content_hash = h.content_hash").fetchall()
    return {(h, f) for h, f in rows}


def write_features(conn, rows: list[tuple[str, str, str, dict]]) -> None:
    """Insert ``(content_hash, feature, version, measures)`` rows (replacing same-key rows)."""
    if not rows:
        return
    ts = now()
    df = pd.DataFrame(
        {"content_hash": [r[0] for r in rows], "feature": [r[1] for r in rows],
         "version": [r[2] for r in rows], "measures": [json.dumps(r[3], sort_keys=True) for r in rows],
         "computed_at": [ts] * len(rows)})
    _insert_df(conn, "feature_values", df, or_replace=True)


def album_features(conn, album: str, versions: Mapping[str, str]) -> pd.DataFrame:
    """Long table (path, content_hash, feature, measures dict) for the album's ok photos."""
    want = pd.DataFrame({"feature": list(versions), "version": list(versions.values())})
    with _registered(conn, "_iqc_want", want):
        df = conn.execute(
            "SELECT p.path, p.content_hash, f.feature, f.measures FROM photos p "
            "JOIN feature_values f ON f.content_hash = p.content_hash "
            "JOIN _iqc_want w ON f.feature = w.feature AND f.version = w.version "
            "WHERE p.album = ? AND p.status = 'ok' ORDER BY p.path, f.feature", [album]).df()
    df["measures"] = [json.loads(m) for m in df["measures"]]
    return df


# --- scores, rankings, weights -----------------------------------------------------------------

def album_scores(conn, album: str) -> pd.DataFrame:
    """Wide table: one row per ok photo (path, content_hash) and one column per normalised score."""
    long = conn.execute(
        "SELECT path, content_hash, score, value FROM normalized_scores WHERE album = ? ORDER BY path",
        [album]).df()
    if long.empty:
        return pd.DataFrame(columns=["path", "content_hash"])
    wide = long.pivot(index=["path", "content_hash"], columns="score", values="value").reset_index()
    wide.columns.name = None
    return wide


def save_weights(conn, weights_id: str, source: str, values: Mapping[str, float]) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO weights VALUES (?, ?, ?, ?)",
        [weights_id, source, json.dumps(dict(values), sort_keys=True), now()])


def set_ranking_weights(conn, weights_id: str, source: str, values: Mapping[str, float]) -> None:
    """Record the weight set rankings use from now on (written by the ``ranking_weights`` asset)."""
    with transaction(conn):
        save_weights(conn, weights_id, source, values)
        conn.execute("INSERT OR REPLACE INTO ranking_weights VALUES (0, ?, ?)", [weights_id, now()])


def ranking_weights(conn) -> dict | None:
    """``{"weights_id", "source", "values"}`` of the weights ``ranking_weights`` chose last, or None."""
    row = conn.execute("SELECT w.weights_id, w.source, w.weights FROM ranking_weights r JOIN weights w "
                       "USING (weights_id) WHERE r.slot = 0").fetchone()
    if row is None:
        return None
    return {"weights_id": row[0], "source": row[1], "values": json.loads(row[2])}


def albums_with_scores(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT album FROM normalized_scores ORDER BY album").fetchall()]


def save_tuned_weights(conn, row: list) -> None:
    """Append one ``tuned_weights`` row (values in the table's column order)."""
    conn.execute("INSERT INTO tuned_weights VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)


def latest_tuned_weights(conn) -> dict | None:
    """The most recent ``tuned_weights`` row as a dict, or None (also when the table does not exist)."""
    exists = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'tuned_weights'"
                          ).fetchone()[0]
    if not exists:
        return None
    cur = conn.execute("SELECT * FROM tuned_weights ORDER BY created_at DESC LIMIT 1")
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row))


# --- per-album scores with two writers ----------------------------------------------------------

def replace_album_scores(conn, album: str, df: pd.DataFrame, *, only: Iterable[str] | None = None,
                         keep: Iterable[str] = ()) -> None:
    """Replace ``album``'s rows of ``normalized_scores`` atomically, but only those scores the caller owns:
    the names in ``only`` when given, else every score not in ``keep``."""
    with transaction(conn):
        if only is not None:
            names = sorted(set(only))
            conn.execute(f"DELETE FROM normalized_scores WHERE album = ? AND score IN "
                         f"({', '.join('?' * len(names))})", [album, *names])
        else:
            names = sorted(set(keep))
            cond = f" AND score NOT IN ({', '.join('?' * len(names))})" if names else ""
            conn.execute(f"DELETE FROM normalized_scores WHERE album = ?{cond}", [album, *names])
        if not df.empty:
            with _registered(conn, "_iqc_scores", df):
                conn.execute("INSERT INTO normalized_scores BY NAME SELECT * FROM _iqc_scores")


# --- CLIP ---------------------------------------------------------------------------------------

def existing_embeddings(conn, hashes: Iterable[str], model_id: str) -> set[str]:
    """Content hashes that already have an embedding from ``model_id``."""
    hs = pd.DataFrame({"content_hash": list(dict.fromkeys(hashes))})
    if hs.empty:
        return set()
    with _registered(conn, "_iqc_hashes", hs):
        rows = conn.execute(
            "SELECT e.content_hash FROM clip_embeddings e JOIN _iqc_hashes h USING (content_hash) "
            "WHERE e.model_id = ?", [model_id]).fetchall()
    return {r[0] for r in rows}


def write_embeddings(conn, model_id: str, hashes: list[str], embeddings) -> None:
    """Store one embedding row (N x D array) per content hash, replacing same-key rows, in one transaction."""
    if len(hashes) == 0:
        return
    if len(hashes) != len(embeddings):
        raise ValueError(f"{len(hashes)} hashes but {len(embeddings)} embeddings")
    df = pd.DataFrame({"content_hash": list(hashes), "model_id": model_id,
                       "embedding": [e.astype("float32").tolist() for e in embeddings],
                       "computed_at": now()})
    _insert_df(conn, "clip_embeddings", df, or_replace=True)


def album_embeddings(conn, album: str, model_id: str):
    """``(photos, matrix)``: the album's ok photos (path, content_hash, has_embedding) and an
    n_with x D float32 matrix whose rows follow the photos that have one, in path order."""
    import numpy as np

    res = conn.execute(
        "SELECT p.path, p.content_hash, e.embedding FROM photos p LEFT JOIN clip_embeddings e "
        "ON e.content_hash = p.content_hash AND e.model_id = ? WHERE p.album = ? AND p.status = 'ok' "
        "ORDER BY p.path", [model_id, album]).fetchnumpy()
    emb = res["embedding"]
    has = np.array([e is not None and not (isinstance(e, float)) for e in emb], dtype=bool)
    if hasattr(emb, "mask"):  # masked array when some rows are NULL
        has &= ~np.asarray(emb.mask, dtype=bool)
    photos = pd.DataFrame({"path": list(res["path"]), "content_hash": list(res["content_hash"]),
                           "has_embedding": has})
    rows = [np.asarray(e, dtype=np.float32) for e, h in zip(emb, has) if h]
    matrix = np.stack(rows) if rows else np.zeros((0, 0), np.float32)
    return photos, matrix


def album_embedding_by_path(conn, album: str, model_id: str) -> dict:
    """``{path: embedding}`` of the album's ok photos that have one for ``model_id``."""
    photos, matrix = album_embeddings(conn, album, model_id)
    vecs = iter(matrix)
    return {p: next(vecs) for p, h in zip(photos["path"], photos["has_embedding"]) if h}


def text_embeddings(conn, model_id: str, prompts: Iterable[str]) -> dict:
    """Stored text embeddings of ``prompts`` for ``model_id``: {prompt: float32 vector} (found ones only)."""
    import numpy as np

    ps = pd.DataFrame({"prompt": list(dict.fromkeys(prompts))})
    if ps.empty:
        return {}
    with _registered(conn, "_iqc_prompts", ps):
        res = conn.execute(
            "SELECT t.prompt, t.embedding FROM clip_text_embeddings t JOIN _iqc_prompts p USING (prompt) "
            "WHERE t.model_id = ?", [model_id]).fetchall()
    return {p: np.asarray(e, dtype=np.float32) for p, e in res}


def write_text_embeddings(conn, model_id: str, prompts: list[str], embeddings) -> None:
    if not prompts:
        return
    df = pd.DataFrame({"model_id": model_id, "prompt": list(prompts),
                       "embedding": [e.astype("float32").tolist() for e in embeddings], "computed_at": now()})
    _insert_df(conn, "clip_text_embeddings", df, or_replace=True)


def save_clip_model(conn, model_id: str, source: str, dim: int, logit_scale: float) -> None:
    conn.execute("INSERT OR REPLACE INTO clip_models VALUES (?, ?, ?, ?, ?)",
                 [model_id, source, int(dim), float(logit_scale), now()])


def clip_model(conn, model_id: str) -> dict | None:
    row = conn.execute("SELECT source, dim, logit_scale FROM clip_models WHERE model_id = ?",
                       [model_id]).fetchone()
    return None if row is None else {"source": row[0], "dim": row[1], "logit_scale": row[2]}


def save_aesthetic_status(conn, album: str, status: str, *, model_id: str | None = None,
                          prompts: Mapping | None = None, message: str = "", n_scored: int = 0,
                          n_missing: int = 0) -> None:
    conn.execute("INSERT OR REPLACE INTO aesthetic_status VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 [album, status, model_id, json.dumps(dict(prompts)) if prompts else None, message,
                  int(n_scored), int(n_missing), now()])


def aesthetic_status(conn, album: str) -> dict | None:
    row = conn.execute("SELECT status, model_id, prompts, message, n_scored, n_missing FROM aesthetic_status "
                       "WHERE album = ?", [album]).fetchone()
    if row is None:
        return None
    return {"status": row[0], "model_id": row[1], "prompts": json.loads(row[2]) if row[2] else None,
            "message": row[3] or "", "n_scored": row[4], "n_missing": row[5]}


# --- perceptual hashes, duplicate groups, album metrics -----------------------------------------

def existing_hashes(conn, hashes: Iterable[str], version: str) -> set[str]:
    hs = pd.DataFrame({"content_hash": list(dict.fromkeys(hashes))})
    if hs.empty:
        return set()
    with _registered(conn, "_iqc_hashes", hs):
        rows = conn.execute("SELECT h.content_hash FROM photo_hashes h JOIN _iqc_hashes x "
                            "ON h.content_hash = x.content_hash WHERE h.version = ?", [version]).fetchall()
    return {r[0] for r in rows}


def write_hashes(conn, version: str, rows: list[tuple[str, str]]) -> None:
    """Store ``(content_hash, hex hashes)`` rows for perceptual-hash ``version``."""
    if rows:
        df = pd.DataFrame({"content_hash": [r[0] for r in rows], "version": version,
                           "hashes": [r[1] for r in rows]})
        _insert_df(conn, "photo_hashes", df, or_replace=True)


def album_hash_rows(conn, album: str, version: str) -> pd.DataFrame:
    """The album's ok photos: path, content_hash, captured_at and their perceptual hashes (hex or None)."""
    return conn.execute(
        "SELECT p.path, p.content_hash, p.captured_at, h.hashes FROM photos p LEFT JOIN photo_hashes h "
        "ON h.content_hash = p.content_hash AND h.version = ? WHERE p.album = ? AND p.status = 'ok' "
        "ORDER BY p.path", [version, album]).df()


def album_groups(conn, album: str) -> pd.DataFrame:
    return conn.execute("SELECT path, group_key, group_kind FROM photo_groups WHERE album = ? ORDER BY path",
                        [album]).df()


def save_album_metrics(conn, album: str, metrics: Mapping, report: str | None) -> None:
    conn.execute("INSERT OR REPLACE INTO album_metrics VALUES (?, ?, ?, ?)",
                 [album, json.dumps(dict(metrics), sort_keys=True, default=str), report, now()])


def album_folder(conn, album: str) -> str | None:
    row = conn.execute("SELECT folder FROM album_folders WHERE album = ?", [album]).fetchone()
    return row[0] if row else None


def save_album_folder(conn, album: str, folder: str) -> None:
    conn.execute("INSERT OR REPLACE INTO album_folders VALUES (?, ?, ?)", [album, folder, now()])


def album_metrics(conn, album: str) -> dict | None:
    row = conn.execute("SELECT metrics FROM album_metrics WHERE album = ?", [album]).fetchone()
    return json.loads(row[0]) if row else None
