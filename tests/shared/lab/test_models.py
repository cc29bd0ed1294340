"""The model catalog's facts without torch: names, kinds, smallest inputs, constructor defaults."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import REPO

from shared.lab.models import CATALOG, model_facts, model_names
from shared.lab.specs import SpecError, resolve


def test_the_catalog_names_the_lab_nets_and_their_facts():
    assert model_names() == ["cnn", "fc2", "lenet", "vgg"]
    assert model_facts("cnn").arg_defaults["n_feature"] == 6 and model_facts("vgg").arg_defaults == {"cfg": None}
    with pytest.raises(TypeError):
        model_facts("fc2").arg_defaults["n_hidden"] = 16  # read-only: one set of facts for every caller
    with pytest.raises(ValueError, match="unknown model 'resnet'; choose one of cnn, fc2, lenet, vgg"):
        model_facts("resnet")
    assert all(f.first_conv == ("features.0" if f.convolutional else None) for f in CATALOG.values())


def test_a_spec_validates_its_model_against_the_catalog():
    assert resolve("mnist-cnn", {"model": "lenet"}).model == "lenet"
    with pytest.raises(SpecError, match="unknown model 'resnet'"):
        resolve("mnist-cnn", {"model": "resnet"})


def test_validating_a_spec_imports_no_torch():
    code = ("import sys; from shared.lab.specs import resolve, SpecError\n"
            "resolve('cifar10-vgg', {'epochs': 2}); resolve('mnist-fc')\n"
            "try:\n    resolve('mnist-fc', {'model': 'nope'})\nexcept SpecError:\n    pass\n"
            "from shared.lab import models\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
