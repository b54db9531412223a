"""Region labels as ad libraries write them map to one shipped shape (ISO 3166-2), or to nothing, with a reason."""

from __future__ import annotations

import gzip
import json
from importlib import resources

import pandas as pd
import pytest

from bubblelens.geo import country_geojson, load_geojson, normalise, region_matcher


@pytest.fixture(scope="module")
def m():
    return region_matcher()


@pytest.mark.parametrize(("label", "code"), [
    ("Bayern, Duitsland", "DE-BY"),                      # DSA target_locations, Dutch locale
    ("Nordrhein-Westfalen, Germany", "DE-NW"),
    ("Nordrhein-Westfalen", "DE-NW"),
    ("Saxony-Anhalt", "DE-ST"),                          # Meta delivery_by_region, English
    ("Thüringen", "DE-TH"), ("Thuringen", "DE-TH"), ("THÜRINGEN", "DE-TH"),
    ("Île-de-France", "FR-IDF"), ("Ile de France", "FR-IDF"), ("ile-de-france", "FR-IDF"),
    ("Provence-Alpes-Cote d’Azur", "FR-PAC"),          # typographic apostrophe, no accent
    ("Bretagne, France", "FR-BRE"), ("Brittany", "FR-BRE"),
    ("Alsace", "FR-GES"), ("Rhône-Alpes", "FR-ARA"),      # France's pre-2016 régions
    ("DE-BY", "DE-BY"), ("de-by", "DE-BY"), ("FR-IDF", "FR-IDF"),
    ("Flemish Region", "BE-VLG"), ("Wallonia", "BE-WAL"), ("Brussels", "BE-BRU"),
    ("Lubusz Voivodeship", "PL-LB"), ("Grevenmacher District", "LU-G"),
    ("Scotland", "GB-SCT"), ("Cataluña", "ES-CT"), ("Lombardia", "IT-25"),
    ("Southern Aegean", "GR-L"),                        # "Southern" written for NE's "South"
    ("Capital Region of Denmark", "DK-84"),
    ("Georgia", "US-GA"),                               # a country's name, but only a US state carries it
    ("Washington", "US-WA"),                            # NE's name beats DC's English alternative
])
def test_labels_match_their_shape(m, label: str, code: str) -> None:
    assert m.match(label) == code


def test_the_country_narrows_the_candidates(m) -> None:
    assert m.match("Limburg") is None                     # NL-LI and BE-VLI: ambiguous without a country
    assert m.explain("Limburg").kind == "ambiguous"
    assert set(m.explain("Limburg").candidates) == {"NL-LI", "BE-VLI"}
    assert m.match("Limburg", country="NL") == "NL-LI"
    assert m.match("Limburg", country="België") == "BE-VLI"   # the country in any language
    assert m.match("Limburg, Nederland") == "NL-LI"
    assert m.match("Bayern", country="FR") is None         # not a region of that country


@pytest.mark.parametrize(("label", "kind", "country"), [
    ("Duitsland", "country", "DE"), ("Deutschland", "country", "DE"), ("Germany", "country", "DE"),
    ("Tsjechische Republiek", "country", "CZ"), ("Luxembourg", "country", "LU"), ("DE", "country", "DE"),
    ("14532, Duitsland", "postcode", "DE"), ("Duitsland: 3.962 postcodes", "postcode", "DE"),
    ("Eisenberg, Thuringen, Germany, Duitsland", "unknown", "DE"),   # a town, not a region
    ("Unknown", "unknown", None), ("", "unknown", None),
])
def test_what_is_not_a_region_says_what_it_is(m, label: str, kind: str, country: str | None) -> None:
    e = m.explain(label)
    assert e.iso_3166_2 is None
    assert (e.kind, e.country) == (kind, country)


def test_country_of(m) -> None:
    assert m.country_of("Duitsland") == m.country_of("Allemagne") == m.country_of("Niemcy") == "DE"
    assert m.country_of("Bayern") is None
    assert m.country_of(None) is None


def test_match_many_keeps_order_index_and_missing_values(m) -> None:
    s = pd.Series(["Bayern", None, "Unknown", "Bayern, Duitsland", float("nan")], index=[5, 6, 7, 8, 9])
    out = m.match_many(s)
    assert list(out.index) == [5, 6, 7, 8, 9]
    assert list(out) == ["DE-BY", None, None, "DE-BY", None]
    assert list(m.match_many(["Île-de-France", "Corse"])) == ["FR-IDF", "FR-20R"]


def test_normalise_is_accent_case_and_punctuation_insensitive() -> None:
    assert normalise("Provence-Alpes-Côte d'Azur") == normalise("PROVENCE ALPES COTE D’AZUR")
    assert normalise("  Île--de   France ") == "ile de france"


def test_every_name_in_the_table_matches_a_shape_it_belongs_to(m) -> None:
    """Each feature's own name finds itself (or its country's map-layer feature of that name)."""
    gj = load_geojson()
    drawn = {f["id"] for f in gj["features"]}
    for f in gj["features"]:
        if f["properties"]["layer"] != "admin1" and f["properties"]["iso_a2"] in ("DE", "FR", "BE", "GB"):
            assert m.match(f["properties"]["name"], f["properties"]["iso_a2"]) == f["id"]
    de = [f for f in gj["features"] if f["properties"]["iso_a2"] == "DE"]
    assert len(de) == 16 and all(m.match(f["properties"]["name"]) == f["id"] for f in de)
    assert all(m.match(f["id"]) == f["id"] for f in de)
    assert {"DE-BY", "FR-IDF"} <= drawn


def test_shipped_boundaries_france_has_18_regions_and_no_download() -> None:
    fr = country_geojson("FR")
    assert len(fr["features"]) == 18
    assert {f["properties"]["layer"] for f in fr["features"]} == {"fr_regions"}
    assert len(country_geojson("DE")["features"]) == 16
    assert len(country_geojson("GB")["features"]) == 4
    # the files are small enough for a wheel and carry their README (origin, licence)
    base = resources.files("bubblelens.resources").joinpath("boundaries")
    sizes = {p.name: len(p.read_bytes()) for p in base.iterdir() if p.name.endswith(".gz")}
    assert sum(sizes.values()) < 3_000_000
    readme = base.joinpath("README.md").read_text(encoding="utf-8")
    assert "Natural Earth" in readme and "public domain" in readme
    with base.joinpath("admin1.geojson.gz").open("rb") as fh:
        assert json.loads(gzip.decompress(fh.read()))["type"] == "FeatureCollection"


def test_regions_command_lists_every_label_with_its_shape_and_counts(tmp_path) -> None:
    from click.testing import CliRunner

    from bubblelens.cli import main
    from bubblelens.ingest import ingest_paths
    from bubblelens.store import Store

    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    db = tmp_path / "s.duckdb"
    with Store.open(db) as store:
        ingest_paths(store, [root / "data" / "fixtures" / "meta_ads.jsonl"])
    res = CliRunner().invoke(main, ["regions", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    deliveries = [r for r in out["labels"] if r["source"] == "deliveries"]
    assert len(deliveries) == 13 and all(r["iso_3166_2"].startswith("FR-") for r in deliveries)
    assert all(r["n_ads"] > 0 for r in deliveries)
    assert out["summary"]["deliveries"]["matched_share"] == 1.0
    targeting = {r["label"]: r for r in out["labels"] if r["source"] == "targeting"}
    assert targeting["France"]["kind"] == "country" and targeting["France"]["iso_3166_2"] is None
    text = CliRunner().invoke(main, ["regions", "--db", str(db)]).output
    assert "deliveries: 13 labels, 13 matched (100.0% of labels" in text


def test_covers_tells_the_funnel_whether_a_targeted_location_includes_a_region(m) -> None:
    assert m.covers("Sachsen, Duitsland", "Sachsen") is True
    assert m.covers("Saxony", "Sachsen") is True                  # same shape, two languages
    assert m.covers("Duitsland", "Nordrhein-Westfalen") is True   # the country includes its regions
    assert m.covers("France", "Bayern") is False
    assert m.covers("Thüringen, Duitsland", "Sachsen") is False
    assert m.covers("Dresden, Duitsland", "Sachsen") is None      # a town: cannot tell from the label
    assert m.covers("14532, Duitsland", "Brandenburg") is None
    assert m.covers("Bayern", "Unknown") is None
