"""Must show (issue 4): the narratives planted outside every codebook (animal welfare; children and
screens) are discovered among the unassigned messages, with recognisable keywords, and one can be
promoted into a codebook (UMAP: slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from bubblelens.cli import main
from bubblelens.ingest import ingest_paths
from bubblelens.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scored_db(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    """The fixture messages, with a stand-in classification: the messages of narratives absent from the
    codebook, and 150 others drawn at random (the classifier's misses), scored ``unassigned``."""
    db = tmp_path_factory.mktemp("disc") / "m.duckdb"
    truth = pd.read_csv(fixtures_dir / "truth" / "messages.csv", dtype={"msg_id": str})
    rng = np.random.default_rng(0)
    misses = set(rng.choice(truth.loc[truth.in_codebook, "msg_id"].to_numpy(), 150, replace=False))
    with Store.open(db) as store:
        ingest_paths(store, [fixtures_dir / "messages.csv"])
        ids = {r[0] for r in store.con.execute("SELECT message_id FROM messages").fetchall()}
        assert set(truth.msg_id) <= ids
        rows = [(m, "narrative", "unassigned" if (not inc or m in misses) else n, 0.5, "zero-shot", "[]")
                for m, n, inc in zip(truth.msg_id, truth.narrative, truth.in_codebook, strict=True)]
        store.con.executemany("INSERT INTO scores (message_id, task, label, p, source, topk) "
                              "VALUES (?, ?, ?, ?, ?, ?)", rows)
    return db


def test_planted_narratives_discovered_with_keywords(scored_db: Path, fixtures_dir: Path) -> None:
    res = CliRunner().invoke(main, ["discover", "--db", str(scored_db)])
    assert res.exit_code == 0, res.output
    truth = pd.read_csv(fixtures_dir / "truth" / "messages.csv", dtype={"msg_id": str})
    with Store.open(scored_db, read_only=True) as store:
        found = store.con.execute("SELECT * FROM discovered ORDER BY narrative_id").df()
        mem = store.con.execute("SELECT * FROM discovered_members").df()
        run = store.con.execute("SELECT params FROM runs WHERE stage = 'discover'").fetchone()
    mem = mem.merge(truth[["msg_id", "narrative"]], left_on="message_id", right_on="msg_id")
    assert len(mem) == 81 + 150

    def cluster_of(narrative: str) -> pd.Series:
        """The discovered narrative that holds most of the planted one's messages, and its purity."""
        m = mem[mem.narrative == narrative]
        nid = m["narrative_id"].value_counts().index[0]
        assert nid != "outlier"
        assert (m["narrative_id"] == nid).mean() >= 0.8                       # recall
        assert (mem.loc[mem.narrative_id == nid, "narrative"] == narrative).mean() >= 0.8  # purity
        return found.set_index("narrative_id").loc[nid]

    animals = cluster_of("animal_welfare")
    kw = " ".join(json.loads(animals["keywords"]))
    assert "animaux" in kw or "animal" in kw
    screens = cluster_of("digital_childhood")
    kw = " ".join(json.loads(screens["keywords"]))
    assert any(w in kw for w in ("écran", "réseaux", "enfants", "screens", "children"))
    reps = json.loads(screens["representatives"])
    assert len(reps) == 5 and all(set(r) == {"message_id", "text"} for r in reps)
    assert screens["size"] == int((mem.narrative_id == screens.name).sum())
    assert json.loads(run[0])["result"]["outlier_share"] == pytest.approx(
        float((mem.narrative_id == "outlier").mean()))

    # promote it into a new user codebook (starts from the default codebook where one ships)
    cb = scored_db.parent / "my_codebook.yaml"
    res = CliRunner().invoke(main, ["narratives", "promote", str(screens.name), "--name", "Enfants et écrans",
                                    "--db", str(scored_db), "--codebook", str(cb)])
    assert res.exit_code == 0, res.output
    entry = yaml.safe_load(cb.read_text(encoding="utf-8"))["narratives"][-1]
    assert entry["id"] == "enfants_et_ecrans" and entry["examples"] == [r["text"] for r in reps]


def test_discover_without_scores_says_what_to_run(tmp_path: Path) -> None:
    db = tmp_path / "e.duckdb"
    Store.open(db).close()
    res = CliRunner().invoke(main, ["discover", "--db", str(db)])
    assert res.exit_code == 2 and "bubblelens classify" in res.output
