"""The fixture corpus: deterministic, parseable, in the stated ranges, and carrying the planted truth.

Every later accuracy test (narratives, camps, segments, bubbles, skews) is judged against
``data/fixtures/truth``; these tests check that the truth is really visible in the data files.
"""

from __future__ import annotations

import json
import re
import runpy
from collections import Counter
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import sparse

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
# the generator's globals: its constants, generate(), and the phrase modules it loaded (_CLAIMS, _PEOPLE)
GEN = SimpleNamespace(**runpy.run_path(str(FIXTURES / "generate.py")))
CAMPS = set(GEN.CAMPS)
CODEBOOK = set(GEN.CODEBOOK_NARRATIVES)
EXTRA = set(GEN.EXTRA_NARRATIVES)
CHANNELS = set(GEN.CHANNELS)
AGES = GEN.AGES


def _files(root: Path) -> dict[str, bytes]:
    names = [
        "messages.csv",
        "messages.mapping.yaml",
        "meta_ads.json",
        "meta_ads.jsonl",
        "google_creative_stats.csv",
        "panel.csv",
        "panel.mapping.yaml",
        "exposures.csv",
        "exposures.mapping.yaml",
        "sponsors.csv",
        "truth/messages.csv",
        "truth/panel.csv",
        "truth/bubbles.json",
    ]
    return {n: (root / n).read_bytes() for n in names}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fixtures_seed7")
    GEN.generate(root, seed=7)
    return root


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


@pytest.fixture(scope="module")
def messages(out: Path) -> pd.DataFrame:
    return _csv(out / "messages.csv")


@pytest.fixture(scope="module")
def truth(out: Path) -> pd.DataFrame:
    return _csv(out / "truth" / "messages.csv")


@pytest.fixture(scope="module")
def meta(out: Path) -> dict:
    return json.loads((out / "meta_ads.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_bytes(out: Path, tmp_path: Path) -> None:
    GEN.generate(tmp_path, seed=7)
    assert _files(tmp_path) == _files(out)


def test_committed_files_are_the_default_seed_output(out: Path) -> None:
    committed, fresh = _files(FIXTURES), _files(out)
    stale = [name for name in fresh if committed[name] != fresh[name]]
    assert not stale, f"regenerate with `python data/fixtures/generate.py`: {stale} differ"


def test_another_seed_gives_different_data(out: Path, tmp_path: Path) -> None:
    GEN.generate(tmp_path, seed=8)
    other, base = _files(tmp_path), _files(out)
    for name in ["messages.csv", "meta_ads.json", "panel.csv", "exposures.csv", "truth/messages.csv"]:
        assert other[name] != base[name], name


# ------------------------------------------------------------------------------------------- shape and counts
def test_messages_counts_are_in_the_stated_ranges(messages: pd.DataFrame, truth: pd.DataFrame) -> None:
    n = len(messages)
    assert n == 800
    assert messages["msg_id"].is_unique
    assert messages["msg_id"].str.fullmatch(r"[1-9]\d{14,15}").all()
    assert 0.70 <= (messages["lang"] == "fr").mean() <= 0.80
    assert set(messages["lang"]) == {"fr", "en"}
    assert set(messages["channel"]) == CHANNELS
    assert 0.45 <= (messages["channel"] == "social_ad").mean() <= 0.55
    assert set(truth["narrative"]) == CODEBOOK | EXTRA
    assert set(truth["camp"]) == CAMPS
    for narrative in EXTRA:
        assert (truth["narrative"] == narrative).sum() >= 25
    assert 0.07 <= (truth["narrative2"] != "").mean() <= 0.13
    assert (truth["narrative2"] != truth["narrative"]).all()
    assert 0.27 <= (messages["camp_label"] != "").mean() <= 0.33
    assert set(messages["sent_date"].str.slice(0, 7)) <= {"2024-06", "2024-07"}
    assert pd.to_datetime(messages["sent_date"], format="%Y-%m-%d").notna().all()


def test_word_counts_fit_each_channel(messages: pd.DataFrame) -> None:
    words = messages["body"].map(lambda t: len(t.split()))
    short = messages["channel"].isin(["social_ad", "sms"])
    assert words[short].between(10, 80).all()
    assert words[~short].min() > 60
    assert messages.loc[messages["channel"] == "sms", "body"].str.contains("STOP").all()
    emails = messages.loc[messages["channel"] == "email", "body"]
    assert emails.str.match(r"(Objet : |Subject: )").all()
    scripts = messages.loc[messages["channel"] == "door_to_door", "body"]
    assert scripts.str.contains(r"\n(?:Militant|Canvasser) ?:").all()
    assert scripts.str.contains(r"\n(?:Habitant|Resident) ?:").all()


def test_ranges_follow_the_channel(messages: pd.DataFrame) -> None:
    ads = messages[messages["channel"] == "social_ad"]
    assert (ads["currency"] == "EUR").all()
    assert (ads["imp_min"].astype(int) >= 0).all() and (ads["spend_min"] != "").all()
    top = ads["imp_max"] == ""
    assert (ads.loc[top, "imp_min"] == "1000000").all()
    bounded = ads[~top]
    assert (bounded["imp_max"].astype(int) > bounded["imp_min"].astype(int)).all()
    direct = messages[messages["channel"].isin(["sms", "email"])]
    assert (direct["imp_min"] == direct["imp_max"]).all() and (direct["imp_min"] != "").all()
    d2d = messages[messages["channel"] == "door_to_door"]
    assert (d2d["imp_min"] == "").all() and (d2d["spend_min"] == "").all()


def test_region_shares_sum_to_one(messages: pd.DataFrame, meta: dict) -> None:
    regions = [c for c in messages.columns if c.startswith("reg_")]
    assert len(regions) == 13 and "reg_Île-de-France" in regions
    ads = messages["channel"] == "social_ad"
    for _, row in messages[ads].iterrows():
        assert sum(Decimal(row[c]) for c in regions) == 1
    assert (messages.loc[~ads, regions] == "").all().all()
    for ad in meta["data"]:
        assert sum(Decimal(x["percentage"]) for x in ad["delivery_by_region"]) == 1
        assert sum(Decimal(x["percentage"]) for x in ad["demographic_distribution"]) == 1
        assert all(isinstance(x["percentage"], str) for x in ad["demographic_distribution"])


def test_meta_page_is_an_ads_archive_response(messages: pd.DataFrame, meta: dict, out: Path) -> None:
    assert set(meta) == {"data", "paging"}
    assert set(meta["paging"]) == {"cursors", "next"} and "access_token=REDACTED" in meta["paging"]["next"]
    ads = messages[messages["channel"] == "social_ad"].set_index("msg_id")
    assert [a["id"] for a in meta["data"]] == list(ads.index)
    required = {
        "id",
        "ad_creation_time",
        "ad_creative_bodies",
        "ad_delivery_start_time",
        "ad_snapshot_url",
        "bylines",
        "currency",
        "delivery_by_region",
        "demographic_distribution",
        "impressions",
        "languages",
        "page_id",
        "page_name",
        "publisher_platforms",
        "spend",
    }
    dsa_keys = {
        "eu_total_reach",
        "target_ages",
        "target_gender",
        "target_locations",
        "beneficiary_payers",
        "age_country_gender_reach_breakdown",
    }
    n_dsa = 0
    for ad in meta["data"]:
        assert required <= set(ad), required - set(ad)
        row = ads.loc[ad["id"]]
        assert dict.fromkeys(ad["ad_creative_bodies"]) == {row["body"]: None}
        assert ad["page_name"] == row["sender"] and ad["page_id"] == row["sender_id"]
        assert ad["impressions"]["lower_bound"] == row["imp_min"]
        assert ad["impressions"].get("upper_bound", "") == row["imp_max"]
        assert ad["spend"]["lower_bound"] == row["spend_min"]
        assert all(isinstance(v, str) for v in [*ad["impressions"].values(), *ad["spend"].values()])
        assert {d["age"] for d in ad["demographic_distribution"]} <= set(AGES)
        if dsa_keys & set(ad):
            n_dsa += 1
            assert dsa_keys <= set(ad)
            assert ad["target_gender"] in {"All", "Men", "Women"} and ad["target_ages"][1] == "65+"
            (country,) = ad["age_country_gender_reach_breakdown"]
            total = sum(r["male"] + r["female"] + r["unknown"] for r in country["age_gender_breakdowns"])
            assert country["country"] == "FR" and abs(total - ad["eu_total_reach"]) <= 20
    assert 0.33 <= n_dsa / len(meta["data"]) <= 0.47
    lines = (out / "meta_ads.jsonl").read_text(encoding="utf-8").splitlines()
    assert 0.15 <= len(lines) / len(meta["data"]) <= 0.25
    by_id = {a["id"]: a for a in meta["data"]}
    assert all(json.loads(line) == by_id[json.loads(line)["id"]] for line in lines)


def test_google_rows_map_to_truth(out: Path, truth: pd.DataFrame) -> None:
    google = _csv(out / "google_creative_stats.csv")
    assert 90 <= len(google) <= 110
    assert {
        "Ad_ID",
        "Ad_URL",
        "Impressions",
        "Spend_Range_Min_EUR",
        "Spend_Range_Max_EUR",
        "Age_Targeting",
        "Gender_Targeting",
        "Geo_Targeting_Included",
        "Geo_Targeting_Excluded",
    } <= set(google.columns)
    assert google["Ad_ID"].str.fullmatch(r"CR\d{20}").all()
    assert set(google["Impressions"]) <= {"≤ 10k", "10k-100k", "100k-1M", "1M-10M", "> 10M"}
    mapped = truth[truth["google_ad_id"] != ""]
    assert set(mapped["google_ad_id"]) == set(google["Ad_ID"])
    assert (mapped["channel"] == "social_ad").all()
    sponsors = dict(zip(mapped["google_ad_id"], mapped["sponsor"], strict=True))
    payers = google.set_index("Ad_ID")["Advertiser_Name"]
    # the advertiser is the sponsor's legal entity: one Google advertiser per sponsor
    assert (
        google.groupby("Advertiser_ID")["Ad_ID"]
        .apply(lambda ids: len({sponsors[i] for i in ids}))
        .eq(1)
        .all()
    )
    assert payers.notna().all()


def test_every_message_has_a_truth_row(messages: pd.DataFrame, truth: pd.DataFrame, out: Path) -> None:
    assert list(truth["msg_id"]) == list(messages["msg_id"])
    assert (
        truth["in_codebook"] == truth["narrative"].isin(CODEBOOK).map({True: "true", False: "false"})
    ).all()
    assert (truth["sponsor"] == messages["sender"]).all() and (truth["channel"] == messages["channel"]).all()
    labelled = messages["camp_label"] != ""
    assert (messages.loc[labelled, "camp_label"] == truth.loc[labelled, "camp"]).all()
    given = messages["narrative_label"] != ""
    assert (messages.loc[given, "narrative_label"] == truth.loc[given, "narrative"]).all()
    assert not truth.loc[given, "narrative"].isin(EXTRA).any()
    sponsors = _csv(out / "sponsors.csv")
    assert 35 <= len(sponsors) <= 45 and sponsors["sponsor"].is_unique
    assert sponsors.groupby("camp").size().min() >= 4
    camp_of = dict(zip(sponsors["sponsor"], sponsors["camp"], strict=True))
    assert (truth["sponsor"].map(camp_of) == truth["camp"]).all()


def test_mappings_name_existing_columns(out: Path, messages: pd.DataFrame) -> None:
    mapping = yaml.safe_load((out / "messages.mapping.yaml").read_text(encoding="utf-8"))
    assert mapping["kind"] == "messages" and set(mapping["fields"].values()) <= set(messages.columns)
    assert mapping["deliveries"] == {"wide_prefix": "reg_", "dimension": "region"}
    panel = yaml.safe_load((out / "panel.mapping.yaml").read_text(encoding="utf-8"))
    assert panel["kind"] == "audiences"
    assert set(panel["fields"].values()) <= set(_csv(out / "panel.csv").columns)
    exposures = yaml.safe_load((out / "exposures.mapping.yaml").read_text(encoding="utf-8"))
    assert exposures == {
        "kind": "exposures",
        "fields": {"audience_id": "panelist_id", "message_id": "msg_id", "count": "n_seen"},
    }


def test_hostile_texts_are_present(messages: pd.DataFrame, truth: pd.DataFrame, out: Path) -> None:
    for payload in ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]:
        assert messages["body"].str.contains(payload, regex=False).sum() == 1
    assert set(truth.loc[truth["hostile"] == "xss", "msg_id"]) == set(
        messages.loc[messages["body"].str.contains("alert(1)", regex=False), "msg_id"]
    )
    assert "<script>alert(1)</script>" in (out / "meta_ads.json").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- planted truth
def test_planted_bubbles_are_visible_in_the_exposure_logs(out: Path, truth: pd.DataFrame) -> None:
    exposures = _csv(out / "exposures.csv")
    panel = _csv(out / "panel.csv")
    members = _csv(out / "truth" / "panel.csv")
    bubbles = json.loads((out / "truth" / "bubbles.json").read_text(encoding="utf-8"))["clusters"]
    assert len(panel) == 1500 and panel["panelist_id"].str.fullmatch(r"PNL-\d{6}").all()
    assert set(exposures["msg_id"]) <= set(truth["msg_id"])
    assert (exposures["n_seen"].astype(int) >= 1).all()
    assert not exposures.duplicated(["panelist_id", "msg_id"]).any()
    df = exposures.merge(truth[["msg_id", "camp"]], on="msg_id").merge(members, on="panelist_id")
    df["n"] = df["n_seen"].astype(int)
    shares = df.groupby(["cluster", "camp"])["n"].sum().unstack(fill_value=0)
    shares = shares.div(shares.sum(axis=1), axis=0)
    assert set(shares.index) == set(bubbles) and len(bubbles) == 6
    leans = panel.merge(members, on="panelist_id")
    for cluster, spec in bubbles.items():
        row = shares.loc[cluster]
        declared = leans.loc[(leans["cluster"] == cluster) & (leans["declared_lean"] != ""), "declared_lean"]
        home = Counter(declared).most_common(1)[0][0]
        assert home == spec["home_lean"]
        cross_cutting = 1 - row[home]
        assert cross_cutting == pytest.approx(spec["observed_cross_cutting"], abs=1e-4)
        assert cross_cutting == pytest.approx(spec["expected_cross_cutting"], abs=0.05)
        seen = sorted(row[row > 0].index)
        assert seen == sorted(spec["camps_seen"])
        if spec["kind"] == "isolated":
            assert seen == [home] and cross_cutting == 0
        elif spec["kind"] == "mixed":
            assert len(seen) == 6 and cross_cutting > 0.7
        else:
            assert 3 <= len(seen) < 6 and 0.3 < cross_cutting < 0.7
    assert sorted(s["kind"] for s in bubbles.values()).count("isolated") == 2


def test_panel_interest_clusters_use_their_vocabulary(out: Path) -> None:
    people = GEN._PEOPLE
    vocab = {c["id"]: {t.lower() for t in c["vocab"]} for c in people.INTEREST_CLUSTERS}
    panel = _csv(out / "panel.csv").merge(_csv(out / "truth" / "panel.csv"), on="panelist_id")
    assert panel["cluster"].nunique() == 6
    assert 0.01 <= (panel["interests"] == "").mean() <= 0.03
    assert set(panel["declared_lean"]) <= CAMPS | {""}
    assert set(panel["age_band"]) == set(AGES)
    text = panel[panel["interests"] != ""]
    own = []
    for interests, cluster in zip(text["interests"].str.lower(), text["cluster"], strict=True):
        hits = {c: sum(term in interests for term in terms) for c, terms in vocab.items()}
        own.append(max(hits, key=lambda c: hits[c]) == cluster)
    assert np.mean(own) > 0.95
    assert text["interests"].nunique() / len(text) > 0.98


def test_planted_skews_are_visible_in_the_meta_delivery(meta: dict, truth: pd.DataFrame, out: Path) -> None:
    skews = json.loads((out / "truth" / "bubbles.json").read_text(encoding="utf-8"))["skews"]
    info = truth.set_index("msg_id")
    planted = [s for s in skews if "effects" in s]
    assert len(planted) >= 8
    for skew in planted:
        when = skew["when"]
        inside: list[dict] = []
        outside: list[dict] = []
        for ad in meta["data"]:
            t = info.loc[ad["id"]]
            match = all(t[k] == v for k, v in when.items())
            (inside if match else outside).append(ad)
        assert len(inside) == skew["n_ads"] >= 10
        for effect in skew["effects"]:
            cells = set(effect["cells"])
            key = {"age": "age", "gender": "gender"}.get(effect["dimension"])

            def share(ad: dict, key: str | None = key, cells: set[str] = cells) -> float:
                if key is None:
                    return float(
                        sum(
                            Decimal(x["percentage"]) for x in ad["delivery_by_region"] if x["region"] in cells
                        )
                    )
                return float(
                    sum(Decimal(x["percentage"]) for x in ad["demographic_distribution"] if x[key] in cells)
                )

            s_in = np.mean([share(a) for a in inside])
            s_out = np.mean([share(a) for a in outside])
            assert s_in == pytest.approx(effect["mean_share_in"], abs=1e-3)
            assert s_in / s_out > 1.25, (skew["id"], effect["dimension"], s_in, s_out)


# ------------------------------------------------------------------------------------------- variety
def _trigrams(text: str) -> list[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return [tuple(words[i : i + 3]) for i in range(len(words) - 2)]


def test_texts_are_varied(messages: pd.DataFrame) -> None:
    bodies = messages["body"]
    assert bodies.duplicated().mean() < 0.05
    grams = [_trigrams(t) for t in bodies]
    flat = [g for gs in grams for g in gs]
    assert len(set(flat)) / len(flat) > 0.25
    # near-duplicates: pairs of messages sharing more than 80 % of their trigram sets (Jaccard)
    vocab = {g: i for i, g in enumerate(dict.fromkeys(flat))}
    rows = [i for i, gs in enumerate(grams) for _ in set(gs)]
    cols = [vocab[g] for gs in grams for g in set(gs)]
    m = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(grams), len(vocab)))
    inter = (m @ m.T).toarray()
    sizes = np.diag(inter)
    jaccard = inter / (sizes[:, None] + sizes[None, :] - inter)
    np.fill_diagonal(jaccard, 0)
    assert (jaccard.max(axis=1) > 0.8).mean() < 0.05


def test_claims_are_hand_written_per_narrative_and_language() -> None:
    claims = GEN._CLAIMS
    assert set(claims) == CODEBOOK | EXTRA
    for narrative, by_lang in claims.items():
        for lang in ("fr", "en"):
            sentences = {s for stance in by_lang[lang].values() for s in stance}
            assert len(sentences) >= 15, (narrative, lang, len(sentences))
            assert {"left", "centre", "right", "far"} <= set(by_lang[lang])


def test_english_messages_are_english(messages: pd.DataFrame) -> None:
    french = re.compile(r"\b(?:nous|vous|avec|sont|notre|votez|pour)\b", re.IGNORECASE)
    english = messages.loc[messages["lang"] == "en", "body"]
    assert english.str.contains(french).mean() < 0.03
    assert english.str.contains(r"\b(?:the|we|our|you)\b", case=False).mean() > 0.95
