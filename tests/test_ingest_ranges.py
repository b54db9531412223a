"""Numbers, ranges, buckets, shares and dates as the sources write them (docs/ingest.md, "Ranges")."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bubblelens.ingest.ranges import (
    parse_bucket,
    parse_count,
    parse_date,
    parse_money,
    parse_range,
    parse_share,
)


def test_meta_ranges_keep_both_bounds_and_an_open_top():
    assert parse_range({"lower_bound": "1000", "upper_bound": "4999"}) == (1000, 4999)
    assert parse_range({"lower_bound": 1000000}) == (1000000, None)
    assert parse_range(None) == (None, None)


@pytest.mark.parametrize("bad", [{"lower_bound": "abc"}, {"lower_bound": "-5"},
                                 {"lower_bound": "10", "upper_bound": "5"}, "1000"])
def test_bad_ranges_are_errors(bad):
    with pytest.raises(ValueError):
        parse_range(bad)


@pytest.mark.parametrize(("text", "expected"), [
    ("≤ 10k", (0, 10_000)), ("10k-100k", (10_000, 100_000)), ("100k–1M", (100_000, 1_000_000)),
    ("> 10M", (10_000_000, None)), ("≤100", (0, 100)), ("5000", (5000, 5000)), ("", (None, None)),
])
def test_buckets(text, expected):
    assert parse_bucket(text) == expected


def test_a_bucket_that_is_not_one_is_an_error():
    with pytest.raises(ValueError):
        parse_bucket("lots")


@given(st.integers(min_value=0, max_value=10**12))
def test_counts_round_trip_with_thousands_separators(n):
    assert parse_count(str(n)) == n
    assert parse_count(f"{n:,}") == n


@pytest.mark.parametrize(("raw", "expected"), [("O", 0), ("7, 193", 7193), ("119;800", 119800),
                                               ("8,61 O", 8610), ("10.496", 10496)])
def test_ocr_repair_of_counts_only_when_asked(raw, expected):
    assert parse_count(raw, ocr=True) == expected
    if raw != "10.496":  # grouped thousands are read either way
        with pytest.raises(ValueError):
            parse_count(raw)


def test_negative_count_is_an_error():
    with pytest.raises(ValueError, match="negative"):
        parse_count("-3")


@pytest.mark.parametrize(("raw", "ocr", "expected"), [
    ("499.49 RUB", False, (499.49, "RUB")), ("€12", False, (12.0, "EUR")), ("1,234.5", False, (1234.5, None)),
    ("3, 106.28 RUB", True, (3106.28, "RUB")), ("31,823.44 R U B", True, (31823.44, "RUB")),
    ("7.609.42 RUB", True, (7609.42, "RUB")),
])
def test_money(raw, ocr, expected):
    assert parse_money(raw, ocr=ocr) == expected


@given(st.floats(min_value=0.0, max_value=1.0, allow_nan=False))
def test_shares_in_unit_interval_are_kept(x):
    assert parse_share(repr(x)) == pytest.approx(x)
    assert parse_share(x) == x


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "abc", "nan", None])
def test_shares_outside_unit_interval_are_errors(bad):
    with pytest.raises(ValueError):
        parse_share(bad)


def test_percent_strings_become_fractions():
    assert parse_share("25%") == 0.25


@pytest.mark.parametrize(("raw", "expected"), [
    ("2019-05-13T15:30:04+0000", datetime(2019, 5, 13, 15, 30, 4)),
    ("2023-09-24", datetime(2023, 9, 24)),
    ("04/13/16 07:48:33 AM PDT", datetime(2016, 4, 13, 14, 48, 33)),  # PDT = UTC−7
    ("", None),
])
def test_dates_become_naive_utc(raw, expected):
    assert parse_date(raw) == expected


def test_ocr_damaged_times_are_repaired_only_when_asked():
    raw = "08/18/16 08:31 :16 AM PDT"
    with pytest.raises(ValueError):
        parse_date(raw)
    assert parse_date(raw, ocr=True) == datetime(2016, 8, 18, 15, 31, 16)


@pytest.mark.parametrize("bad", ["yesterday", "2019-13-45", "05/17/16 041&02 AM PDT", "1850-01-01"])
def test_unparseable_dates_are_errors(bad):
    with pytest.raises(ValueError):
        parse_date(bad, ocr=True)
