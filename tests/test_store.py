"""The store's connection: a file opened for writing is attached with BubbleLens's row group size, and
shared by every Store of the same file in one process."""

from __future__ import annotations

import duckdb
import pytest

from bubblelens.errors import StoreError
from bubblelens.store import ROW_GROUP_SIZE, Store


def test_row_groups_of_the_store_size(tmp_path):
    with Store.open(tmp_path / "s.duckdb") as store:
        store.con.execute(f"CREATE TABLE t AS SELECT range AS i FROM range({2 * ROW_GROUP_SIZE + 5})")
        groups = store.con.execute("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('t')").fetchall()
        assert groups == [(3,)]


def test_two_stores_of_one_file_share_it(tmp_path):
    path = tmp_path / "s.duckdb"
    a, b = Store.open(path), Store.open(path)
    a.set_meta("k", "v")
    assert b.get_meta("k") == "v" and a.salt == b.salt
    a.close()
    assert b.stats()["schema_version"] == 1
    b.close()
    with duckdb.connect(str(path), read_only=True) as con:  # released: any other client may open it
        assert con.execute("SELECT value FROM meta WHERE key = 'k'").fetchall() == [("v",)]
    with Store.open(path, read_only=True) as ro:
        assert ro.get_meta("k") == "v"


def test_a_file_that_is_not_a_store_is_refused_in_one_sentence(tmp_path):
    bad = tmp_path / "notes.duckdb"
    bad.write_text("not a database\n")
    with pytest.raises(StoreError, match=r"notes\.duckdb"):
        Store.open(bad)
    with Store.open(tmp_path / "fine.duckdb") as store:  # a failed open leaves nothing behind
        assert store.schema_version() == 1
