"""One grammar for seeds: a count or a list, the same in `cnnlab train`, `cnnlab sweep` and the API."""

from __future__ import annotations

import pytest

from shared.lab.seeds import MAX_SEEDS, parse_seeds, seed_list
from shared.lab.specs import SpecError


def test_a_lone_number_is_a_count_and_lists_name_seeds():
    assert parse_seeds("5") == [0, 1, 2, 3, 4]
    assert parse_seeds("2-4") == [2, 3, 4]
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds("0-3,8") == [0, 1, 2, 3, 8]
    assert parse_seeds("5-5") == [5]


def test_the_text_form_and_the_api_form_agree():
    assert parse_seeds("3") == seed_list(3)
    assert parse_seeds("4,1") == seed_list([4, 1])


@pytest.mark.parametrize("bad", ["a-b", "3-1", "", "1,1", "0", str(MAX_SEEDS + 1), "-2", "1.5"])
def test_bad_seeds_name_the_field(bad):
    with pytest.raises(SpecError, match="seeds"):
        parse_seeds(bad)


def test_the_api_form_refuses_booleans_and_repeats():
    for bad in (True, 0, [], [1, 1], [-1]):
        with pytest.raises(SpecError):
            seed_list(bad)
