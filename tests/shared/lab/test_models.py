"""The model catalog's facts without torch: names, kinds, smallest inputs, constructor defaults."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import REPO

from shared.lab.models import CATALOG, model_facts, model_names
from shared.lab.specs import SpecError, resolve


def test_the_catalog_names_the_lab_nets_and_their_facts():
    assert model_names() == ["cnn", "fastnet", "fc2", "lenet", "vgg"]
    assert model_facts("cnn").arg_defaults["n_feature"] == 6 and model_facts("vgg").arg_defaults == {"cfg": None}
    with pytest.raises(TypeError):
        model_facts("fc2").arg_defaults["n_hidden"] = 16  # read-only: one set of facts for every caller
    with pytest.raises(ValueError, match="unknown model 'resnet'; choose one of cnn, fastnet, fc2, lenet, vgg"):
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


ALLOW = '["cnnlab-example-nets"]'


def fake_package(site, name: str, declaration: str):
    """A package installed by hand into `site` (a dist-info folder, as pip writes one): one cnnlab.models entry."""
    (site / f"{name}_nets").mkdir(parents=True)
    (site / f"{name}_nets" / "__init__.py").write_text(f"DECL = {declaration}\n")
    info = site / f"{name}_nets-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-nets\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[cnnlab.models]\n{name} = {name}_nets:DECL\n")
    return site


def test_an_installed_package_adds_its_nets_only_when_allowed(example_nets, monkeypatch):
    monkeypatch.syspath_prepend(str(example_nets))
    assert "tinyconv" not in model_names()  # installed, not allowed
    with pytest.raises(SpecError, match="model 'tinyconv' comes from package cnnlab-example-nets, which "
                                        "CNNLAB_MODEL_PACKAGES does not allow"):
        resolve("mnist-cnn", {"model": "tinyconv"})
    monkeypatch.setenv("CNNLAB_MODEL_PACKAGES", '["CNNLab_Example.Nets"]')  # PEP 503: the same distribution
    assert model_names() == ["cnn", "fastnet", "fc2", "lenet", "tinyconv", "vgg"]
    facts = model_facts("tinyconv")
    assert (facts.convolutional, facts.min_size, dict(facts.arg_defaults)) == (True, 8, {"width": 4})
    assert (facts.builder, facts.package, facts.first_conv) == ("cnnlab_example_nets.nets:TinyConv",
                                                                "cnnlab-example-nets", "features.0")
    assert resolve("mnist-cnn", {"model": "tinyconv", "model_args.width": 2}).model_args == {"width": 2}


def test_a_broken_declaration_or_a_taken_name_is_skipped(tmp_path, monkeypatch):
    site = fake_package(tmp_path, "bad", '{"net": "bad_nets:X", "convolutional": True}')  # no min_size, summary
    fake_package(site, "cnn", '{"net": "cnn_nets:X", "convolutional": True, "min_size": 1, "summary": "x"}')
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("CNNLAB_MODEL_PACKAGES", '["bad-nets", "cnn-nets"]')
    assert model_names() == ["cnn", "fastnet", "fc2", "lenet", "vgg"] and model_facts("cnn").builder is None
    with pytest.raises(ValueError, match="whose declaration is broken"):
        model_facts("bad")


def test_validating_an_entry_point_net_imports_no_torch(example_nets):
    code = ("import sys; from shared.lab.specs import resolve\n"
            "assert resolve('mnist-cnn', {'model': 'tinyconv'}).model == 'tinyconv'\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'sqlalchemy') if m in sys.modules))")
    env = {**os.environ, "CNNLAB_MODEL_PACKAGES": ALLOW,
           "PYTHONPATH": os.pathsep.join([str(example_nets), str(REPO)])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         cwd=REPO, env=env)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
