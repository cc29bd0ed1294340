"""The fast recipe's ingredients (cifar10-fast), each on its own: every test fails if the ingredient is wrong."""

from __future__ import annotations

import torch

from shared.lab.specs import resolve
from shared.train import lookahead, tta
from shared.train.augment import alternating_flips, crop_flip
from shared.train.batches import EpochPlan
from shared.train.fastnet import dirac_
from shared.train.nets import build_model
from shared.train.steps import make_optimizer, triangle
from shared.train.whitening import Whitening, patches


def correlated_images(n: int = 400) -> torch.Tensor:
    """Smooth images: neighbouring pixels and channels strongly correlated (N, 3, 16, 16)."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(n, 1, 8, 8, generator=g)
    x = torch.nn.functional.interpolate(base, size=16, mode="bilinear").repeat(1, 3, 1, 1)
    return x + 0.1 * torch.randn(n, 3, 16, 16, generator=g)


def test_whitening_decorrelates_patches():
    x = correlated_images()
    rows = patches(x, 2)
    raw = rows.T @ rows / len(rows)
    assert (raw - torch.diag(torch.diag(raw))).abs().max() > 0.3  # correlated: ~0.98 of the variance
    layer = Whitening(3, 2)
    layer.fit(x)
    out = torch.nn.functional.conv2d(x, layer.weight[:12])  # the first half: the whitening filters themselves
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12)
    cov = flat.T @ flat / len(flat)
    eigen = torch.linalg.eigvalsh(raw)
    expected = torch.diag((eigen / (eigen + 5e-4)).flip(0))  # identity, shrunk where eps matters
    assert torch.allclose(cov, expected, atol=2e-2)
    assert torch.equal(layer.weight[12:], -layer.weight[:12]) and not layer.weight.requires_grad


def test_dirac_init_is_an_identity_on_its_channels():
    conv = dirac_(torch.nn.Conv2d(4, 6, 3, padding=1, bias=False))
    x = torch.randn(2, 4, 8, 8)
    out = conv(x)
    assert torch.allclose(out[:, :4], x, atol=1e-6)
    assert not torch.allclose(out[:, 4:], torch.zeros_like(out[:, 4:]))  # the rest keep their random init
    net = build_model("fastnet", (3, 32, 32), 10, dirac=False)
    assert not torch.allclose(net.features[2][0](torch.ones(1, 24, 4, 4))[:, :24], torch.ones(1, 24, 4, 4))


def test_fixed_bn_scale_and_bias_learning_rate():
    spec = resolve("cifar10-fast")
    net = build_model("fastnet", (3, 32, 32), 10)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(b.weight.requires_grad for b in bns)
    opt = make_optimizer(spec, net)
    rest, biases = opt.param_groups
    assert {id(p) for p in biases["params"]} == {id(b.bias) for b in bns}
    assert biases["lr"] == spec.lr * 64 and biases["weight_decay"] * biases["lr"] == spec.weight_decay * spec.lr
    assert rest["nesterov"] and rest["momentum"] == 0.85
    learned = build_model("fastnet", (3, 32, 32), 10, fixed_bn_scale=False)
    assert all(m.weight.requires_grad for m in learned.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_triangle_schedule():
    assert triangle(0, 100) == 0.2 and triangle(23, 100) == 1.0 and abs(triangle(100, 100) - 0.07) < 1e-9
    assert triangle(10, 100) < triangle(20, 100) and triangle(50, 100) > triangle(80, 100)


def test_lookahead_moves_the_weights_as_stated():
    model = torch.nn.Linear(2, 1)
    spe, total = 10, 100
    la = lookahead.Lookahead(model, spe, total)
    la.begin(0)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for done in range(1, 35):  # through epoch 3 (0-based epochs 0-2): nothing moves
        la(done)
    assert la.average is None and model.weight.eq(1.0).all()
    la(35)  # the first update step after epoch 3: the average starts at the weights
    with torch.no_grad():
        model.weight.fill_(3.0)
    la(40)  # an update (40 % 5 == 0) that also ends the epoch
    rho = lookahead.decay(40, total)
    expected = rho * 1.0 + (1 - rho) * 3.0
    assert torch.allclose(model.weight, torch.full_like(model.weight, expected))
    assert torch.allclose(la.average[0], model.weight)  # weights copied from the average
    with torch.no_grad():
        model.weight.fill_(5.0)
    la(41)  # not an update step, not an epoch end: the weights stay
    assert model.weight.eq(5.0).all()
    assert abs(lookahead.decay(total, total) - 0.95 ** 5) < 1e-12


def test_alternating_flip_flips_each_image_every_other_epoch():
    n = 1000
    flips = [alternating_flips(n, seed=7, epoch=e) for e in range(1, 6)]
    for a, b in zip(flips, flips[1:], strict=False):
        assert (a ^ b).all()  # every image changes each epoch
    assert 400 < int(flips[0].sum()) < 600  # half start flipped
    plan = EpochPlan.make(n, 7, 3, True, torch.device("cpu"), pad=2, flip="alternating")
    assert torch.equal(plan.flips, flips[2][plan.order])  # by position in the epoch's order
    assert plan.offsets.max() == 4


def test_reflect_translate():
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
    out = crop_flip(x, torch.tensor([[0, 0]]), torch.tensor([False]), 2, reflect=True)  # shift by 2 up-left
    assert out[0, 0, 0].tolist() == [10, 9, 8, 9] and out[0, 0, 2].tolist() == [2, 1, 0, 1]
    same = crop_flip(x, torch.tensor([[2, 2]]), torch.tensor([True]), 2, reflect=True)
    assert torch.equal(same, x.flip(-1))


def test_tta_views_are_the_stated_ones():
    x = torch.randn(2, 3, 8, 8)
    assert [(w, v.data_ptr()) for w, v in tta.views(x, 0)] == [(1.0, x.data_ptr())]
    one = tta.views(x, 1)
    assert [w for w, _ in one] == [0.5, 0.5] and torch.equal(one[1][1], x.flip(-1))
    two = tta.views(x, 2)
    assert [w for w, _ in two] == [0.25, 0.25, 0.125, 0.125, 0.125, 0.125]
    up_left = tta.shifted(x, -1, -1)
    assert torch.equal(up_left[..., 1:, 1:], x[..., :-1, :-1])  # pixel (i, j) shows (i-1, j-1)
    assert torch.equal(up_left[..., 0, 1:], x[..., 1, :-1])  # the border reflected
    assert torch.equal(two[2][1], up_left) and torch.equal(two[3][1], up_left.flip(-1))
    assert torch.equal(two[4][1][..., :-1, :-1], x[..., 1:, 1:])


def test_the_preset_trains_through_the_engine_and_resumes(data_dir, tmp_path):
    from shared.train import engine

    spec = resolve("cifar10-fast", {"dataset": "cifar10-jpeg", "train_limit": 256, "test_limit": 100, "epochs": 5,
                                    "batch_size": 64, "test_batch_size": 50, "model_args.widths": [8, 16, 16],
                                    "device": "cpu"})
    whole = engine.fit(spec, data_root=data_dir, out_dir=tmp_path)
    assert whole.tta.level == 2 and whole.tta.views == 6 and whole.test_accuracy == whole.tta.accuracy
    assert whole.tta.plain_accuracy == whole.history[-1].test_accuracy
    resumed = engine.fit(spec, data_root=data_dir, resume=tmp_path / "epoch-004.pt")  # lookahead on since epoch 4
    assert (resumed.test_accuracy, resumed.tta.plain_accuracy) == (whole.test_accuracy, whole.tta.plain_accuracy)
    assert resumed.history[-1].test_loss == whole.history[-1].test_loss
