"""The codebook format, the default codebook, sponsors (issue 3)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bubblelens.classify import SponsorTable, load_codebook, normalize_name
from bubblelens.errors import CodebookError

NARRATIVES = ["cost_of_living", "pensions", "immigration", "security", "climate", "health", "education",
              "europe", "taxes", "jobs", "agriculture", "democracy", "defence", "housing"]
CAMPS = {"nfp": -0.7, "ensemble": 0.1, "liot": 0.0, "lr": 0.5, "rn": 0.85, "reconquete": 0.95}


def test_default_codebook_has_the_agreed_ids_in_french_and_english():
    cb = load_codebook()
    assert cb.narrative_ids == NARRATIVES
    assert {c.id: c.position for c in cb.camps} == CAMPS
    for n in cb.narratives:
        assert set(n.labels) == {"fr", "en"} and set(n.description) == {"fr", "en"}
        assert 4 <= len(n.examples) <= 8
    assert len(cb.sha256) == 64


def test_default_codebook_leaves_the_planted_narratives_undiscovered():
    text = Path(str(load_codebook().path)).read_text(encoding="utf-8").lower()
    for word in ("animal", "animaux", "enfant", "children", "écran", "screen", "réseaux sociaux",
                 "social network", "cyberharcèlement", "cyberbullying"):
        assert word not in text


def test_generic_camps_take_over_the_sponsors_of_their_blocs():
    g = load_codebook().with_generic_camps()
    assert g.camp_ids == ["left", "centre", "right"]
    assert [c.position for c in g.camps] == [-0.6, 0.0, 0.6]
    table = SponsorTable.from_codebook(g)
    assert table.lookup("Rassemblement National") == "right"
    assert table.lookup("La France insoumise") == "left"


def _write(tmp_path, text, name="cb.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


MINI = """
narratives:
  - id: pensions
    labels: {fr: Retraites, en: Pensions}
camps:
  - id: left
    labels: {en: Left}
    position: -0.5
    sponsors: ["Parti Socialiste", "123456", "/insoumis/"]
"""


@pytest.mark.parametrize("bad, match", [
    ("narratives: [}", "not valid YAML"),
    (MINI.replace("id: left", "id: pensions").replace("id: pensions\n    labels: {fr: Ret", "id: x\n    labels: {fr: Ret"), None),
    (MINI + "  - id: left\n    labels: {en: L}\n", "duplicated"),
    (MINI.replace("-0.5", "-3"), "position"),
    (MINI.replace("labels: {en: Left}", "labels: {en: Left}\n    colour: red"), "unknown keys"),
    (MINI.replace("id: pensions", "id: Pensions"), "lower_snake_case"),
    (MINI.replace("id: pensions", "id: unassigned"), "unassigned"),
    (MINI.replace('"/insoumis/"', '"/(unclosed/"'), "bad pattern"),
])
def test_invalid_codebooks_are_refused_with_the_reason(tmp_path, bad, match):
    if match is None:
        load_codebook(_write(tmp_path, bad))  # same id in two lists is allowed
        return
    with pytest.raises(CodebookError, match=match):
        load_codebook(_write(tmp_path, bad))


def test_missing_codebook_is_a_codebook_error(tmp_path):
    with pytest.raises(CodebookError, match="cannot read"):
        load_codebook(tmp_path / "nope.yaml")


def test_sponsor_table_page_id_then_normalized_name_then_pattern(tmp_path):
    (tmp_path / "sponsors.csv").write_text("sponsor,sponsor_id,camp\nMairie de Lille,999,left\n", encoding="utf-8")
    cb = load_codebook(_write(tmp_path, MINI + "sponsors_file: sponsors.csv\n"))
    t = SponsorTable.from_codebook(cb)
    assert t.lookup(None, "123456") == "left"
    assert t.lookup("PARTI SOCIALISTE.") == "left"
    assert t.lookup("Les Insoumis du Nord") == "left"
    assert t.lookup("mairie de lille", None) == "left" and t.lookup("x", "999") == "left"
    assert t.lookup("Un autre parti", "1") is None


def test_a_sponsors_file_with_an_unknown_camp_is_refused(tmp_path):
    (tmp_path / "s.csv").write_text("sponsor,sponsor_id,camp\nX,1,nowhere\n", encoding="utf-8")
    with pytest.raises(CodebookError, match="unknown camp 'nowhere'"):
        load_codebook(_write(tmp_path, MINI + "sponsors_file: s.csv\n"))


def test_normalize_name_casefolds_and_strips_accents_and_punctuation():
    assert normalize_name("  Reconquête !  – Éric Zemmour ") == "reconquete eric zemmour"
    assert re.fullmatch(r"[a-z0-9 ]+", normalize_name("Les Écologistes—EELV (officiel)"))
