"""The seed's networks: exact parameter counts, output shapes, and clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shared.train.nets import build_model, count_params, model_info, model_names

MNIST, CIFAR = (1, 28, 28), (3, 32, 32)


@pytest.mark.parametrize("name, in_shape, cfg, expected", [
    ("fc2", MNIST, {"n_hidden": 8}, 6442),  # 784*8+8 + 8*8+8 + 8*10+10
    ("cnn", MNIST, {"n_feature": 6}, 6422),  # the seed's "same number of parameters" CNN
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
    """Logits, not log-probabilities; cross_entropy on them is the seed's log_softmax + nll_loss."""
    torch.manual_seed(0)
    model = build_model(name, in_shape, 10).eval()
    with torch.no_grad():
        out = model(torch.randn(4, *in_shape))
    assert not torch.allclose(out.exp().sum(1), torch.ones(4), atol=1e-3)
    y = torch.tensor([0, 3, 5, 9])
    assert torch.allclose(F.cross_entropy(out, y), F.nll_loss(F.log_softmax(out, dim=1), y), atol=1e-6)


def test_the_registry_carries_each_models_facts():
    assert [model_info(n).convolutional for n in ("fc2", "cnn", "lenet", "vgg")] == [False, True, True, True]
    assert (model_info("cnn").min_size, model_info("vgg").min_size) == (16, 32)
    assert model_info("fc2").first_conv is None
    for name, in_shape in (("cnn", MNIST), ("lenet", CIFAR), ("vgg", CIFAR)):
        model = build_model(name, in_shape, 10)
        assert isinstance(model.features, torch.nn.Sequential)  # the convolutional trunk, on every conv net
        assert isinstance(model.get_submodule(model_info(name).first_conv), torch.nn.Conv2d)


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
    assert model_names() == ["cnn", "fc2", "lenet", "vgg"]


def test_unknown_model_arg_is_a_value_error():
    with pytest.raises(ValueError, match="bad model_args for 'fc2'"):
        build_model("fc2", MNIST, 10, n_feature=6)
