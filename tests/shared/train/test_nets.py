"""The lab's networks: exact parameter counts, output shapes, and clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shared.lab.models import model_facts, model_names
from shared.train.nets import build_model, count_params, register

MNIST, CIFAR = (1, 28, 28), (3, 32, 32)


@pytest.mark.parametrize("name, in_shape, cfg, expected", [
    ("fc2", MNIST, {"n_hidden": 8}, 6442),  # 784*8+8 + 8*8+8 + 8*10+10
    ("cnn", MNIST, {"n_feature": 6}, 6422),  # the lab's "same number of parameters" CNN
    ("lenet", CIFAR, {}, 62006),
    ("vgg", CIFAR, {}, 9231114),
])
def test_parameter_counts_match_the_seed(name, in_shape, cfg, expected):
    assert count_params(build_model(name, in_shape, 10, **cfg)) == expected


def test_fc2_and_cnn_have_nearly_equal_size_as_in_the_seed():
    fc, cnn = build_model("fc2", MNIST, 10, n_hidden=8), build_model("cnn", MNIST, 10, n_feature=6)
    assert abs(count_params(fc) - count_params(cnn)) < 25


def test_model_args_change_size():
    assert count_params(build_model("fc2", MNIST, 10, n_hidden=16)) == 784 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10
    assert count_params(build_model("cnn", MNIST, 10, n_feature=12)) > 6422


@pytest.mark.parametrize("name, in_shape", [
    ("fc2", MNIST), ("cnn", MNIST), ("lenet", MNIST),
    ("fc2", CIFAR), ("cnn", CIFAR), ("lenet", CIFAR), ("vgg", CIFAR),
])
@pytest.mark.parametrize("classes", [10, 5])
def test_output_shape(name, in_shape, classes):
    torch.manual_seed(0)
    model = build_model(name, in_shape, classes).eval()
    with torch.no_grad():
        out = model(torch.randn(3, *in_shape))
    assert out.shape == (3, classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name, in_shape", [("fc2", MNIST), ("cnn", MNIST), ("lenet", CIFAR), ("vgg", CIFAR)])
def test_every_net_returns_logits_and_cross_entropy_is_the_seeds_loss(name, in_shape):
    """Logits, not log-probabilities; cross_entropy on them is the lab's log_softmax + nll_loss."""
    torch.manual_seed(0)
    model = build_model(name, in_shape, 10).eval()
    with torch.no_grad():
        out = model(torch.randn(4, *in_shape))
    assert not torch.allclose(out.exp().sum(1), torch.ones(4), atol=1e-3)
    y = torch.tensor([0, 3, 5, 9])
    assert torch.allclose(F.cross_entropy(out, y), F.nll_loss(F.log_softmax(out, dim=1), y), atol=1e-6)


def test_every_catalog_model_builds_as_its_facts_say():
    assert [model_facts(n).convolutional for n in ("fc2", "cnn", "lenet", "vgg")] == [False, True, True, True]
    assert (model_facts("cnn").min_size, model_facts("vgg").min_size) == (16, 32)
    assert model_facts("fc2").first_conv is None
    for name in model_names():  # every name of the catalog has a registered class
        model = build_model(name, CIFAR, 10, **model_facts(name).arg_defaults)
        assert build_model(name, CIFAR, 10).state_dict().keys() == model.state_dict().keys()
        if model_facts(name).convolutional:
            assert isinstance(model.features, torch.nn.Sequential)  # the convolutional trunk, on every conv net
            assert isinstance(model.get_submodule(model_facts(name).first_conv), torch.nn.Conv2d)


class Tiny(torch.nn.Module):
    """The lab's FC2Layer: Linear-ReLU-Linear-ReLU-Linear (784-8-8-10: 6,442 params)."""

    def __init__(self, in_shape, num_classes, n_hidden: int = 8):
        super().__init__()


def test_register_fails_loudly_off_the_catalog_or_against_its_facts():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        register("resnet")(Tiny)
    with pytest.raises(TypeError, match="disagrees with the catalog's 'cnn'"):
        register("cnn")(Tiny)  # another summary and other defaults
    with pytest.raises(TypeError, match="'fc2' is registered twice: FC2Layer and Tiny"):
        register("fc2")(Tiny)  # the facts agree, but fc2 has its class


@pytest.mark.parametrize("name", ["fc2", "cnn", "lenet", "vgg"])
def test_the_catalog_summary_is_the_class_docstring(name):
    cls = type(build_model(name, CIFAR, 10))
    assert cls.__doc__.strip().splitlines()[0] == model_facts(name).summary


def test_vgg_backward_in_train_mode():
    model = build_model("vgg", CIFAR, 10).train()
    out = model(torch.randn(2, *CIFAR))
    out.sum().backward()
    assert model.features[0].weight.grad is not None


def test_vgg_rejects_28x28_with_a_clear_error():
    with pytest.raises(ValueError, match=r"vgg.*32x32.*28x28"):
        build_model("vgg", MNIST, 10)


@pytest.mark.parametrize("name", ["cnn", "lenet"])
def test_conv_nets_reject_tiny_images(name):
    with pytest.raises(ValueError, match="16x16"):
        build_model(name, (1, 8, 8), 10)


def test_unknown_model_names_the_choices():
    with pytest.raises(ValueError) as exc:
        build_model("resnet", MNIST, 10)
    msg = str(exc.value)
    assert "resnet" in msg
    for name in ("fc2", "cnn", "lenet", "vgg"):
        assert name in msg
    assert model_names() == ["cnn", "fastnet", "fc2", "lenet", "vgg"]


def test_unknown_model_arg_is_a_value_error():
    with pytest.raises(ValueError, match="bad model_args for 'fc2'"):
        build_model("fc2", MNIST, 10, n_feature=6)


# --- model_args for the studies: defaults build the lab's nets exactly -------------------------------------


class SeedCNN(torch.nn.Module):
    """The CNN as it was before its model_args (layer for layer), to compare initial weights."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 6, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(96, 50), nn.ReLU(), nn.Linear(50, 10))


class SeedLeNet(torch.nn.Module):
    """The lab's CIFAR-10 Net, in the trunk/head layout, as it was before its model_args."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.features = nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                        nn.Linear(84, 10))


@pytest.mark.parametrize("name, in_shape, reference, defaults", [
    ("cnn", MNIST, SeedCNN, {"n_feature": 6, "head": "fc", "dropout": 0.0}),
    ("lenet", CIFAR, SeedLeNet, {"activation": "relu", "pool": "max", "dropout": 0.0, "conv": "5x5",
                                 "residual": False, "blocks": 0}),
])
def test_defaults_give_the_same_initial_weights_as_before(name, in_shape, reference, defaults):
    torch.manual_seed(3)
    want = reference().state_dict()
    for args in ({}, defaults):
        torch.manual_seed(3)
        got = build_model(name, in_shape, 10, **args).state_dict()
        assert list(got) == list(want)
        assert all(torch.equal(got[k], want[k]) for k in want)
    assert str(build_model(name, in_shape, 10, **defaults)) == str(build_model(name, in_shape, 10))


@pytest.mark.parametrize("name, in_shape, args, expected", [
    ("cnn", MNIST, {"head": "conv1x1"}, 1132),  # trunk 156 + 906, head 6*10 + 10
    ("cnn", MNIST, {"head": "gap_fc"}, 1132),  # the same pooling and head parameters, the other order
    ("cnn", MNIST, {"head": "conv1x1", "n_feature": 16}, 7002),  # trunk 416 + 6,416, head 170: about the fc CNN
    ("cnn", MNIST, {"dropout": 0.5}, 6422),
    ("lenet", CIFAR, {"activation": "sigmoid", "pool": "avg"}, 62006),
    ("lenet", CIFAR, {"activation": "tanh", "dropout": 0.3}, 62006),
    ("lenet", CIFAR, {"conv": "3x3x2"}, 62832),  # (168 + 330) + (880 + 2,320) in place of 456 + 2,416
    ("lenet", CIFAR, {"residual": True}, 62120),  # + 1x1 projections 3*6 + 6*16
    ("lenet", CIFAR, {"residual": True, "conv": "3x3x2"}, 62946),
    ("lenet", CIFAR, {"blocks": 2}, 67306),  # + 2 * (330 + 2,320)
    ("lenet", CIFAR, {"blocks": 2, "residual": True}, 67420),  # identity shortcuts inside a stage add nothing
])
def test_variant_parameter_counts(name, in_shape, args, expected):
    assert count_params(build_model(name, in_shape, 10, **args)) == expected


@pytest.mark.parametrize("name, in_shape, args", [
    ("cnn", MNIST, {"head": "conv1x1"}), ("cnn", MNIST, {"dropout": 0.5}),
    ("lenet", CIFAR, {"activation": "sigmoid", "pool": "avg"}), ("lenet", CIFAR, {"conv": "3x3x2", "dropout": 0.5}),
    ("lenet", CIFAR, {"residual": True, "blocks": 2}), ("lenet", MNIST, {"residual": True, "conv": "3x3x2"}),
])
def test_variants_are_conv_nets_returning_logits(name, in_shape, args):
    torch.manual_seed(0)
    model = build_model(name, in_shape, 10, **args)
    assert isinstance(model.features, torch.nn.Sequential) and hasattr(model, "classifier")
    out = model.train()(torch.randn(4, *in_shape))
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    out.sum().backward()
    first = next(m for m in model.features.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.weight.grad is not None


def test_the_1x1_conv_head_is_a_linear_layer_on_every_pixel_then_averaged():
    """Question 4.4: a 1x1 convolution is an FC layer shared by all positions (here followed by GAP)."""
    torch.manual_seed(0)
    model = build_model("cnn", MNIST, 10, head="conv1x1").eval()
    x = torch.randn(2, *MNIST)
    maps = model.features(x)  # (2, 6, 4, 4)
    conv = model.classifier[0]
    per_pixel = F.linear(maps.permute(0, 2, 3, 1), conv.weight.flatten(1), conv.bias)  # (2, 4, 4, 10)
    assert torch.allclose(model(x), per_pixel.mean((1, 2)), atol=1e-5)


def test_residual_shortcut_projects_and_crops():
    from shared.train.nets import Residual

    torch.manual_seed(0)
    model = build_model("lenet", CIFAR, 10, residual=True)
    block = model.features[0]
    assert isinstance(block, Residual) and isinstance(block.shortcut, torch.nn.Conv2d)
    assert block.shortcut.kernel_size == (1, 1) and block.shortcut.weight.shape == (6, 3, 1, 1)
    x = torch.randn(1, *CIFAR)
    with torch.no_grad():
        want = block.body(x) + F.conv2d(x[..., 2:-2, 2:-2], block.shortcut.weight)
        assert torch.allclose(block(x), want)


@pytest.mark.parametrize("name, args, message", [
    ("cnn", {"head": "gap"}, "head must be one of 'fc', 'conv1x1', 'gap_fc', got 'gap'"),
    ("cnn", {"dropout": 1.0}, "dropout must be a probability"),
    ("lenet", {"activation": "gelu"}, "activation must be one of 'relu', 'sigmoid', 'tanh'"),
    ("lenet", {"pool": "min"}, "pool must be one of 'max', 'avg'"),
    ("lenet", {"conv": "7x7"}, "conv must be one of '5x5', '3x3x2'"),
    ("lenet", {"residual": "yes"}, "residual must be one of"),
    ("lenet", {"blocks": 9}, "blocks must be an integer from 0 to 8"),
    ("lenet", {"dropout": "0.5"}, "dropout must be a probability"),
])
def test_bad_variant_args_are_value_errors_naming_the_arg(name, args, message):
    with pytest.raises(ValueError, match=message):
        build_model(name, CIFAR, 10, **args)


def test_an_entry_point_net_builds_as_its_declaration_says(example_nets, monkeypatch):
    monkeypatch.syspath_prepend(str(example_nets))
    with pytest.raises(ValueError, match="comes from package cnnlab-example-nets"):
        build_model("tinyconv")  # a worker that does not allow the package builds nothing of it
    monkeypatch.setenv("CNNLAB_MODEL_PACKAGES", '["cnnlab-example-nets"]')
    model = build_model("tinyconv", (3, 32, 32), 10, width=5)
    assert isinstance(model.features[0], torch.nn.Conv2d) and count_params(model) == 3 * 5 * 9 + 5 + 5 * 10 + 10
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="at least 8x8"):
        build_model("tinyconv", (1, 4, 4), 10)


def test_an_entry_point_net_that_disagrees_with_its_declaration_is_refused(example_nets, tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "liar_nets").mkdir(parents=True)  # declares TinyConv with another default than the class has
    (site / "liar_nets" / "__init__.py").write_text(
        "from cnnlab_example_nets import TINYCONV\nDECL = {**TINYCONV, 'arg_defaults': {'width': 8}}\n")
    (site / "liar_nets-0.1.dist-info").mkdir()
    (site / "liar_nets-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: liar-nets\nVersion: 0.1\n")
    (site / "liar_nets-0.1.dist-info" / "entry_points.txt").write_text("[cnnlab.models]\nliar = liar_nets:DECL\n")
    monkeypatch.syspath_prepend(str(example_nets))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("CNNLAB_MODEL_PACKAGES", '["liar-nets"]')
    with pytest.raises(TypeError, match="TinyConv disagrees with the catalog's 'liar'"):
        build_model("liar")
