import duckdb
import pandas as pd
import pytest

from iqc_dagster.core import store


@pytest.fixture
def conn(tmp_path):
    c = duckdb.connect(str(tmp_path / "t.duckdb"))
    store.ensure_schema(c)
    yield c
    c.close()


def _rows(album, n, score=0.5):
    return pd.DataFrame({"album": album, "path": [f"{i}.jpg" for i in range(n)],
                         "content_hash": [f"h{i}" for i in range(n)], "score": "sharpness_norm", "value": score})


def test_replace_album_rows_is_idempotent_and_per_album(conn):
    store.replace_album_rows(conn, "normalized_scores", "a", _rows("a", 3))
    store.replace_album_rows(conn, "normalized_scores", "b", _rows("b", 2))
    store.replace_album_rows(conn, "normalized_scores", "a", _rows("a", 3, 0.7))
    counts = dict(conn.execute("SELECT album, count(*) FROM normalized_scores GROUP BY album").fetchall())
    assert counts == {"a": 3, "b": 2}
    assert conn.execute("SELECT min(value) FROM normalized_scores WHERE album='a'").fetchone()[0] == 0.7


def test_failed_replace_keeps_previous_rows(conn):
    store.replace_album_rows(conn, "normalized_scores", "a", _rows("a", 2))
    dup = pd.concat([_rows("a", 2, 0.9), _rows("a", 2, 0.9)])  # primary-key violation
    with pytest.raises(duckdb.ConstraintException):
        store.replace_album_rows(conn, "normalized_scores", "a", dup)
    assert conn.execute("SELECT count(*), max(value) FROM normalized_scores").fetchone() == (2, 0.5)


def test_features_cached_by_hash_and_version(conn):
    store.write_features(conn, [("h1", "sharpness", "v1", {"x": 1.0}), ("h2", "sharpness", "v1", {"x": 2.0})])
    store.write_features(conn, [("h1", "sharpness", "v1", {"x": 1.5})])  # replaces, no duplicate
    have = store.existing_features(conn, ["h1", "h2", "h3"], {"sharpness": "v1"})
    assert have == {("h1", "sharpness"), ("h2", "sharpness")}
    assert store.existing_features(conn, ["h1"], {"sharpness": "v2"}) == set()
    assert conn.execute("SELECT count(*) FROM feature_values").fetchone()[0] == 2


def test_hostile_album_name_is_data_not_sql(conn):
    name = "x'; DROP TABLE photos; --"
    store.replace_album_rows(conn, "normalized_scores", name, _rows(name, 1))
    store.album_photos(conn, name)
    assert conn.execute("SELECT album FROM normalized_scores").fetchone()[0] == name
    with pytest.raises(ValueError):
        store.replace_album_rows(conn, "feature_values; DROP TABLE photos", "a", _rows("a", 1))


def test_schema_is_stamped_and_a_stamped_database_is_not_rebuilt(tmp_path):
    import duckdb

    path = str(tmp_path / "s.duckdb")
    with duckdb.connect(path) as conn:
        store.ensure_schema(conn)
        assert conn.execute("SELECT id FROM iqc_schema").fetchall() == [(store.SCHEMA_ID,)]
        tables = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert {"photos", "feature_values", "rankings", "clip_embeddings"} <= tables
        conn.execute("DROP TABLE rankings")  # stamped: ensure_schema trusts the stamp and runs no DDL
        store.ensure_schema(conn)
        tables = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "rankings" not in tables
        conn.execute("UPDATE iqc_schema SET id = 'older'")  # another schema version: the DDL runs again
        store.ensure_schema(conn)
        tables = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "rankings" in tables
        assert conn.execute("SELECT id FROM iqc_schema").fetchall() == [(store.SCHEMA_ID,)]


def test_two_connections_creating_the_schema_at_once_both_succeed(tmp_path):
    import threading

    import duckdb

    path = str(tmp_path / "race.duckdb")
    conns = [duckdb.connect(path) for _ in range(2)]
    errors, barrier = [], threading.Barrier(2)

    def make(conn):
        barrier.wait()
        try:
            store.ensure_schema(conn)
        except Exception as exc:  # noqa: BLE001 - the test reports whatever escaped
            errors.append(exc)

    threads = [threading.Thread(target=make, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert conns[0].execute("SELECT id FROM iqc_schema").fetchall() == [(store.SCHEMA_ID,)]
    for c in conns:
        c.close()
