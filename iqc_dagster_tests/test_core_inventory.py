import os

import pytest

from iqc_dagster.core import imaging, inventory
from iqc_dagster_tests.conftest import real_photo, save_jpeg


def test_list_albums_only_plain_folders(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "file.jpg").write_bytes(b"x")
    assert inventory.list_albums(tmp_path) == ["a", "b"]
    with pytest.raises(inventory.AlbumError):
        inventory.list_albums(tmp_path / "missing")


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "x\ny", "a\\q"])
def test_bad_album_names_rejected(tmp_path, name):
    with pytest.raises(inventory.AlbumError):
        inventory.album_dir(tmp_path, name)


def test_album_dir_refuses_symlink_escape(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", root / "link")
    with pytest.raises(inventory.AlbumError):
        inventory.album_dir(root, "link")


def test_scan_lists_photos_recursively_and_marks_unreadable(tmp_path):
    save_jpeg(real_photo("coffee"), tmp_path / "a.jpg")
    save_jpeg(real_photo("chelsea"), tmp_path / "sub" / "b.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not a photo")
    (tmp_path / "notes.txt").write_text("ignored")
    df = inventory.scan_album(tmp_path, "al")
    assert df["path"].tolist() == ["a.jpg", "empty.jpg", "sub/b.jpg", "text.jpg"]
    st = dict(zip(df["path"], df["status"]))
    assert st == {"a.jpg": "ok", "sub/b.jpg": "ok", "empty.jpg": "unreadable", "text.jpg": "unreadable"}
    bad = df[df["status"] == "unreadable"]
    assert bad["reason"].str.len().min() > 0
    ok = df[df["status"] == "ok"].iloc[0]
    assert (ok["width"], ok["height"], ok["format"]) == (600, 400, "JPEG")


def test_rescan_reuses_unchanged_rows_without_reading(tmp_path, monkeypatch):
    save_jpeg(real_photo("coffee"), tmp_path / "a.jpg")
    save_jpeg(real_photo("chelsea"), tmp_path / "b.jpg")
    first = inventory.scan_album(tmp_path, "al")
    calls = []
    real_hash = imaging.hash_file
    monkeypatch.setattr(imaging, "hash_file", lambda p: calls.append(p) or real_hash(p))
    again = inventory.scan_album(tmp_path, "al", previous=first)
    assert calls == []
    assert again["content_hash"].tolist() == first["content_hash"].tolist()
    save_jpeg(real_photo("rocket"), tmp_path / "b.jpg")  # edited in place
    os.utime(tmp_path / "b.jpg", ns=(1, 10**18))
    third = inventory.scan_album(tmp_path, "al", previous=again)
    assert [p.name for p in calls] == ["b.jpg"]
    assert third["content_hash"].iloc[1] != first["content_hash"].iloc[1]


def test_content_hash_is_xxh3_of_the_bytes_and_old_hashes_are_recomputed(tmp_path):
    import xxhash

    a = save_jpeg(real_photo("coffee"), tmp_path / "a.jpg")
    (tmp_path / "copy.jpg").write_bytes(a.read_bytes())
    h = imaging.hash_file(a)
    assert h == "xxh3:" + xxhash.xxh3_128(a.read_bytes()).hexdigest()
    assert imaging.hash_file(tmp_path / "copy.jpg") == h  # same bytes, same key, whatever the name
    first = inventory.scan_album(tmp_path, "al")
    old = first.copy()
    old["content_hash"] = "0123456789abcdef0123456789abcdef"  # a row from before (BLAKE2b, no prefix)
    again = inventory.scan_album(tmp_path, "al", previous=old)
    assert again["content_hash"].tolist() == first["content_hash"].tolist()  # rehashed, not reused


def test_fingerprint_changes_when_photos_change(tmp_path):
    save_jpeg(real_photo("coffee"), tmp_path / "a.jpg")
    fp = inventory.album_fingerprint(tmp_path)
    assert inventory.album_fingerprint(tmp_path) == fp
    save_jpeg(real_photo("chelsea"), tmp_path / "b.jpg")
    assert inventory.album_fingerprint(tmp_path) != fp
