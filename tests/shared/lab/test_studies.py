"""Studies: every cell of every study at every size is a valid, buildable spec; verdicts follow the intervals."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys

import pytest
import torch

from shared.lab.specs import resolve
from shared.lab.studies import STUDIES, Claim, get_study, word
from shared.lab.verdicts import assess
from shared.train.data import BUILTIN
from shared.train.nets import build_model, count_params

CIFAR_SHAPE = ((3, 32, 32), list(range(10)))  # cifar10's shape without its files (only cifar10-jpeg is here)
SIZES = ("quick", "full")


def expand(preset: str, base: dict, grid: dict) -> list[dict]:
    """A private, plain grid expansion (the sweeps code owns the shared one)."""
    return [{**base, **dict(zip(grid, combo, strict=True))} for combo in itertools.product(*grid.values())]


@pytest.mark.parametrize("name", list(STUDIES))
@pytest.mark.parametrize("size", SIZES)
def test_every_cell_resolves_and_builds(name, size):
    study = get_study(name)
    for label, overrides in study.cell_overrides(size).items():
        spec = resolve(study.preset, overrides)  # raises SpecError naming the field
        shape, classes = BUILTIN.get(spec.dataset, CIFAR_SHAPE)
        with torch.device("meta"):
            model = build_model(spec.model, shape, len(classes), **spec.model_args)
        assert count_params(model) > 0, label


@pytest.mark.parametrize("name", [n for n, s in STUDIES.items() if s.grid is not None])
def test_grid_studies_cells_are_the_grid_product(name):
    study = get_study(name)
    for size in SIZES:
        expanded = expand(study.preset, study.base(size), study.grid)
        assert sorted(map(repr, expanded)) == sorted(map(repr, study.cell_overrides(size).values()))
        body = study.sweep_body(size)
        assert body["grid"] == study.grid and body["base"]["preset"] == study.preset


def test_listed_cells_studies_list_their_cells_in_the_sweep_body():
    study = get_study("raise-accuracy")
    body = study.sweep_body("quick", seeds=2)
    assert "grid" not in body and len(body["cells"]) == len(study.cells) and body["cells"][0] == {}
    assert {"epochs": 6} in body["cells"] and body["base"]["overrides"]["train_limit"] == 20000


def test_the_hidden_smoke_size_shrinks_the_quick_size():
    study = get_study("raise-accuracy")
    assert study.base("smoke")["train_limit"] == 300 and study.base("smoke")["epochs"] == 1
    assert study.cell_values("smoke")["2x epochs"] == {"epochs": 6} and study.reduced("smoke")
    assert "smoke" not in study.sizes


def test_cells_differ_from_each_other_and_only_in_the_swept_values():
    for study in STUDIES.values():
        for size in SIZES:
            specs = [resolve(study.preset, o).model_dump() for o in study.cell_overrides(size).values()]
            assert len({repr(s) for s in specs}) == len(specs), study.name


def test_sizes_change_training_length_only_where_said():
    for study in STUDIES.values():
        quick = study.sizes["quick"]
        assert quick.note, f"{study.name}: the quick size says what it cannot show"
        assert set(quick.overrides) <= {"train_limit", "test_limit", "epochs"}
        assert not set(study.sizes["full"].overrides) & {"train_limit", "test_limit"}


def test_the_lab_questions_are_all_covered():
    covered = " ".join(s.lab_question for s in STUDIES.values())
    for q in ("4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8"):
        assert q in covered
    assert len(STUDIES) >= 9 and all(s.version >= 1 and s.claims for s in STUDIES.values())


def test_parameter_counts_in_labels_are_right():
    study = get_study("conv1x1-vs-fc")
    for label, overrides in study.cell_overrides("full").items():
        spec = resolve(study.preset, overrides)
        stated = int(re.search(r"\(([\d,]+) params\)", label).group(1).replace(",", ""))
        assert count_params(build_model("cnn", (1, 28, 28), 10, **spec.model_args)) == stated, label


def test_1989_preset_is_the_1989_cell_at_full_size():
    study = get_study("lenet-1989")
    cell = resolve(study.preset, study.cell_overrides("full")["sigmoid + avg pool"])
    assert resolve("cifar10-lenet-1989") == cell


CLAIM = Claim(text="a beats b", a="x", b="y", expect="higher", holds="H {evidence}", does_not_hold="N {evidence}")


def test_word_marks_verdicts_from_reduced_sizes_and_fills_every_template():
    result = assess("higher", 1.0, [97.0, 97.2, 96.8], [90.0, 91.0, 90.5])
    assert word(CLAIM, result, False).startswith("H difference +")
    reduced = word(CLAIM, result.model_copy(update={"verdict": "does_not_hold"}), True)
    assert reduced.startswith("Quick size") and "N difference" in reduced
    for study in STUDIES.values():
        for claim in study.claims:
            for verdict in ("holds", "does_not_hold", "reversed", "inconclusive"):
                text = word(claim, result.model_copy(update={"verdict": verdict}), False)
                assert "{" not in text and f"{claim.a} − {claim.b}" not in text


def test_sizes_withhold_what_their_notes_disown():
    assert get_study("lenet-1989").shown("quick") == [False, False, True, True]
    assert get_study("raise-accuracy").shown("quick") == [False, True, False, False, True, True, True, True]
    assert get_study("lenet-vs-vgg").shown("quick") == [False]
    assert "3 epochs hardly reach" in get_study("raise-accuracy").sizes["quick"].note
    assert all(all(s.shown("full")) for s in STUDIES.values())


def test_conv1x1_compares_heads_on_one_trunk_with_the_same_pooling():
    study = get_study("conv1x1-vs-fc")
    specs = {label: resolve(study.preset, o) for label, o in study.cell_overrides("full").items()}
    assert {s.model_args.get("n_feature", 6) for s in specs.values()} == {6}  # one trunk width
    same = study.claims[0]
    assert {specs[same.a].model_args["head"], specs[same.b].model_args["head"]} == {"conv1x1", "gap_fc"}


def test_fc_vs_cnn_permutes_per_seed_and_says_up_front_what_its_equal_claim_needs():
    study = get_study("fc-vs-cnn")
    permuted = [resolve(study.preset, o) for label, o in study.cell_overrides("quick").items() if "permuted" in label]
    assert len(permuted) == 2 and all(s.permute_pixels and s.permutation == "per_seed" for s in permuted)
    assert study.claims[1].seeds_hint > 20 and "70 seeds" in study.sizes["quick"].note


def test_reduced_sizes():
    assert not get_study("fc-vs-cnn").reduced("quick")  # MNIST's quick size is the lab's recipe
    assert get_study("shuffle").reduced("quick") and get_study("raise-accuracy").reduced("quick")
    assert not any(s.reduced("full") for s in STUDIES.values())


def test_a_claim_must_name_existing_cells():
    study = get_study("shuffle")
    bad = study.claims[0].model_copy(update={"a": "nope"})
    with pytest.raises(ValueError, match="'nope' is not one of"):
        type(study).model_validate({**study.model_dump(), "claims": [bad.model_dump()]})


def test_unknown_study_names_the_choices():
    with pytest.raises(KeyError, match="fc-vs-cnn"):
        get_study("nope")


def test_studies_import_no_torch():
    code = "import sys, shared.lab.studies; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_every_quick_size_has_a_measured_estimate_within_the_budget():
    for study in STUDIES.values():
        minutes = study.sizes["quick"].minutes_5_seeds
        assert minutes is not None and 0 < minutes <= 15, study.name
