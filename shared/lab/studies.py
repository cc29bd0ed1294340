"""The studies: one per closing question of the lab document (section 4) plus its headline claims.

Each is data: a versioned sweep template (its cells, the claims it tests, its sizes); shared/lab/verdicts.py
turns a claim's numbers into a verdict. Accuracy differences are in points;
`quick` sizes were measured with bench/study_cells.py (docs/fields.md). Imports no torch and no database.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.lab.verdicts import Claim, word

__all__ = ["LISTED_SIZES", "STUDIES", "Claim", "Size", "SizeSpec", "Study", "get_study", "study_names", "word"]

Size = Literal["quick", "full", "smoke"]
LISTED_SIZES: tuple[Size, ...] = ("quick", "full")  # "smoke" is hidden: tests and the bench's --smoke only
# The hidden size: the quick size on a few hundred images, 1 epoch (a cell's own epochs kept), to test the plumbing.
SMOKE = {"train_limit": 300, "test_limit": 200, "epochs": 1}


class SizeSpec(BaseModel):
    """Overrides for one size; `cells` replaces some cells' own values at this size (e.g. 'more epochs')."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    overrides: dict[str, Any] = Field(default_factory=dict)
    cells: dict[str, dict[str, Any]] = Field(default_factory=dict)
    note: str = Field("", description="what this size cannot show that the full size does")
    minutes_5_seeds: float | None = Field(None, description="measured estimate, 5 seeds on 2 CPU cores")
    shows_claims: bool | list[int] = Field(True, description="False: this size cannot show what the claims are about "
                                           "(the note says why), a list: the indexes of the claims it shows; the "
                                           "others' verdicts are withheld, the data still shown")


class Study(BaseModel):
    """A named, versioned sweep template: its cells, the claims it tests, and its sizes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int
    lab_question: str = Field(description="the lab document's section, e.g. 4.1, or 'claims'")
    title: str
    question: str
    lab_answer: str = Field(description="the lab document's answer, summarized in English")
    preset: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] | None = Field(None, description="a product grid (POST /sweeps); None: listed cells")
    cells: dict[str, dict[str, Any]] = Field(description="label -> the cell's values, keyed like a grid's fields")
    claims: list[Claim]
    sizes: dict[Literal["quick", "full"], SizeSpec]

    @model_validator(mode="after")
    def _consistent(self) -> "Study":
        for claim in self.claims:
            for label in (claim.a, claim.b):
                if label not in self.cells:
                    raise ValueError(f"{self.name}: claim cell {label!r} is not one of {', '.join(self.cells)}")
        for size, spec in self.sizes.items():
            if set(spec.cells) - set(self.cells):
                raise ValueError(f"{self.name}: size {size} replaces unknown cells {set(spec.cells) - set(self.cells)}")
        return self

    def size_spec(self, size: Size) -> SizeSpec:
        """The size's overrides; "smoke" is the quick size shrunk to SMOKE (a test-only size, never listed)."""
        if size != "smoke":
            return self.sizes[size]
        quick = self.sizes["quick"]
        return SizeSpec(overrides={**quick.overrides, **SMOKE}, cells=quick.cells, shows_claims=quick.shows_claims,
                        note="A test-only size: a few hundred images, one epoch. Its verdicts mean nothing.")

    def shown(self, size: Size) -> list[bool]:
        """Per claim, whether `size` shows it (the others are withheld: the note says why)."""
        shows = self.size_spec(size).shows_claims
        return [shows if isinstance(shows, bool) else i in shows for i in range(len(self.claims))]

    def base(self, size: Size) -> dict[str, Any]:
        """The overrides every cell shares at `size` (the study's, then the size's)."""
        return {**self.overrides, **self.size_spec(size).overrides}

    def cell_values(self, size: Size) -> dict[str, dict[str, Any]]:
        """label -> the cell's values at `size`."""
        spec = self.size_spec(size)
        return {label: {**values, **spec.cells.get(label, {})} for label, values in self.cells.items()}

    def cell_overrides(self, size: Size) -> dict[str, dict[str, Any]]:
        """label -> the full overrides of that cell's jobs (with the preset, everything but the seed)."""
        return {label: {**self.base(size), **values} for label, values in self.cell_values(size).items()}

    def reduced(self, size: Size) -> bool:
        """Whether `size` trains less than the lab's recipe (the full size): its verdicts say so."""
        return self.cell_overrides(size) != self.cell_overrides("full")

    def sweep_body(self, size: Size, seeds: int | list[int] = 5) -> dict[str, Any]:
        """A POST /sweeps body: the product grid where the study has one (and the size keeps it), else listed cells."""
        body: dict[str, Any] = {"name": f"{self.name} v{self.version} ({size})",
                                "base": {"preset": self.preset, "overrides": self.base(size)}, "seeds": seeds}
        if self.grid is not None and not self.size_spec(size).cells:
            return body | {"grid": self.grid}
        return body | {"cells": list(self.cell_values(size).values())}


def product(grid: dict[str, list[Any]], label) -> dict[str, dict[str, Any]]:
    """Every combination of a grid's values, labelled by `label(values)`."""
    cells = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    return {label(c): c for c in cells}



AHEAD = "Holds: {a} is ahead of {b}: {evidence}."
NOT_AHEAD = "Does not hold: {a} is not ahead of {b} by {margin} or more: {evidence}."
SAME = "Holds: {a} and {b} are within {margin} of each other: {evidence}."
DIFFERENT = "Does not hold: {a} and {b} differ by more than {margin}: {evidence}."

# MNIST jobs are cheap enough that the quick size is the lab's recipe (60,000 images, 1 epoch); CIFAR-10's is not.
MNIST_NOTE = "The lab's own recipe: its 5 seeds fit the quick budget on 2 CPU cores."
CIFAR_QUICK = {"train_limit": 20000, "test_limit": 5000, "epochs": 3}
CIFAR_NOTE = ("3 epochs on 20,000 of the 50,000 training images, tested on 5,000: differences that need the lab's "
              "10 epochs on all images (regularizers above all) may not show, or may reverse.")


FC_PERMUTED_SEEDS = 70
FC_PERMUTED_NOTE = (" Up front: 'permuting leaves the FC network unchanged' needs about 70 seeds per cell (the FC "
                    "net's seed-to-seed spread, 2.4 points, against the 1-point margin: bench/results/studies.json, "
                    "unpaired); one run allows 20, so it stays inconclusive until several runs are pooled.")


def higher(text: str, a: str, b: str, **kw) -> Claim:
    return Claim(text=text, a=a, b=b, expect="higher", holds=AHEAD, does_not_hold=NOT_AHEAD, **kw)


def same(text: str, a: str, b: str, **kw) -> Claim:
    return Claim(text=text, a=a, b=b, expect="equal", holds=SAME, does_not_hold=DIFFERENT, **kw)


def _fc_vs_cnn() -> Study:
    name = {"fc2": "FC (6,442 params)", "cnn": "CNN (6,422 params)"}
    # A new pixel permutation for each seed, as the lab draws one per run (not one fixed for every seed).
    permuted = {"permute_pixels": True, "permutation": "per_seed"}
    cells = {name[m] + label: {"model": m, **extra} for m in name for label, extra in (("", {}), (", permuted", permuted))}
    return Study(
        name="fc-vs-cnn", version=2, lab_question="claims (1.5, 1.6)", title="FC vs CNN at equal parameters, "
        "and on permuted pixels",
        question="With the same number of parameters, is a CNN more accurate than a fully connected network on "
                 "MNIST? If the pixels of every image are shuffled by one permutation (a new one for each seed), does the "
                 "FC network stay the same while the CNN gets worse?",
        lab_answer="Yes: the CNN with the same parameter count is clearly more accurate, because convolution and "
                    "pooling exploit the image's local structure. After permuting the pixels the FC network "
                    "performs about as before, but the CNN clearly drops: the local relations between pixels are gone.",
        preset="mnist-fc", cells=cells,  # fc2 and cnn defaults (n_hidden 8, n_feature 6) are the presets' arguments
        claims=[
            higher("The CNN beats the FC network at equal parameters.", name["cnn"], name["fc2"]),
            same("Permuting the pixels leaves the FC network unchanged.", name["fc2"] + ", permuted", name["fc2"],
                 seeds_hint=FC_PERMUTED_SEEDS),
            higher("Permuting the pixels hurts the CNN.", name["cnn"], name["cnn"] + ", permuted"),
        ],
        sizes={"quick": SizeSpec(note=MNIST_NOTE + FC_PERMUTED_NOTE), "full": SizeSpec(note=FC_PERMUTED_NOTE)})


def _lenet_vs_vgg() -> Study:
    return Study(
        name="lenet-vs-vgg", version=1, lab_question="claims (2, 3)", title="LeNet vs VGG on CIFAR-10",
        question="Does the simplified VGG classify CIFAR-10 better than the LeNet-style net, trained the same way?",
        lab_answer="Yes: the simplified VGG raises test accuracy from about 64% (LeNet, 10 epochs) to 82.87%.",
        preset="cifar10-vgg", grid={"model": ["lenet", "vgg"]},
        cells={"LeNet (62,006 params)": {"model": "lenet"}, "VGG (9,231,114 params)": {"model": "vgg"}},
        claims=[higher("VGG is more accurate than LeNet.", "VGG (9,231,114 params)", "LeNet (62,006 params)")],
        sizes={"quick": SizeSpec(overrides={"train_limit": 10000, "test_limit": 2000, "epochs": 2},
                                 note="VGG's edge needs epochs: 2 epochs on 10,000 images are far too little for a "
                                      "9-million-parameter net, so the quick size cannot show the lab's claim (it "
                                      "measures the early gap only). Run the full size on a GPU.", shows_claims=False),
               "full": SizeSpec(note="Both nets get VGG's recipe (Adam 1e-3, batch 128, crop+flip, CIFAR-10 "
                                     "mean/std), so the difference is the architecture; the lab's 64% LeNet ran "
                                     "without augmentation at batch 64 (the cifar10-lenet preset).")})


def _shuffle() -> Study:
    grid = {"shuffle": [True, False], "sort_by_class": [False, True]}
    name = {(True, False): "shuffled", (False, False): "stored order", (False, True): "class-sorted",
            (True, True): "class-sorted, then shuffled"}
    return Study(
        name="shuffle", version=1, lab_question="4.1", title="Shuffling the training data",
        question="What difference does the DataLoader's shuffle make: shuffled every epoch, or the same order every "
                 "epoch, and what if that order is sorted by class?",
        lab_answer="With shuffle=True the data are put in a new random order every epoch, so every epoch sees a "
                    "different sequence, which removes the effect of the data's order on training.",
        preset="mnist-cnn", grid=grid, cells=product(grid, lambda c: name[(c["shuffle"], c["sort_by_class"])]),
        claims=[
            higher("Shuffling beats a class-sorted order.", "shuffled", "class-sorted"),
            same("Shuffling removes the effect of the stored order.", "class-sorted, then shuffled", "shuffled"),
            higher("Shuffling beats MNIST's stored order (already well mixed).", "shuffled", "stored order"),
        ],
        sizes={"quick": SizeSpec(overrides={"epochs": 2}, note="2 epochs, not 3: a repeated order matters more "
                                                                      "over more epochs."),
               "full": SizeSpec(overrides={"epochs": 3})})


def _normalization() -> Study:
    cells = {"dataset mean/std (0.1307, 0.3081)": {"mean": [0.1307], "std": [0.3081]},
             "none (0, 1)": {"mean": [0.0], "std": [1.0]}, "(0.5, 0.5)": {"mean": [0.5], "std": [0.5]}}
    return Study(
        name="normalization", version=1, lab_question="4.2", title="Normalization values",
        question="What difference do the values in transforms.Normalize make: the dataset's mean and std, none "
                 "(mean 0, std 1), or (0.5, 0.5)?",
        lab_answer="Normalize computes (input - mean) / std per channel; with the data's mean and std the inputs "
                    "get mean 0 and std 1; (0.5, 0.5) maps [0, 1] to [-1, 1].",
        preset="mnist-cnn", cells=cells,  # mean and std go together: listed cells, not a product
        claims=[
            higher("Standardizing with the dataset's mean/std beats raw [0, 1] inputs.",
                   "dataset mean/std (0.1307, 0.3081)", "none (0, 1)"),
            higher("The dataset's own mean/std beats the generic (0.5, 0.5).", "dataset mean/std (0.1307, 0.3081)",
                   "(0.5, 0.5)"),
        ],
        sizes={"quick": SizeSpec(note=MNIST_NOTE), "full": SizeSpec()})


def _epoch_vs_batch() -> Study:
    grid = {"batch_size": [16, 64, 256, 1024], "steps": [None, 100]}
    return Study(
        name="epoch-vs-batch", version=1, lab_question="4.3", title="Epochs and batch size",
        question="What is the difference between an epoch and a batch? Batch 16/64/256/1024 at a fixed number of "
                 "epochs (the same samples seen), and at a fixed number of updates.",
        lab_answer="The batch size is the number of samples processed before the model's parameters are updated; "
                    "the number of epochs is the number of complete passes through the training set. An epoch "
                    "consists of one or more batches; 1 <= batch size <= the training set's size.",
        preset="mnist-cnn", grid=grid,
        cells=product(grid, lambda c: f"batch {c['batch_size']}, " + (
            "fixed epochs" if c["steps"] is None else f"{c['steps']} updates")),
        claims=[
            higher("At fixed epochs, smaller batches (more updates) learn more.", "batch 64, fixed epochs",
                   "batch 1024, fixed epochs"),
            higher("At a fixed number of updates, larger batches (more samples) learn more.", "batch 1024, 100 updates",
                   "batch 64, 100 updates"),
            higher("At fixed epochs, batch 64 beats batch 16 (the lab's choice).", "batch 64, fixed epochs",
                   "batch 16, fixed epochs"),
        ],
        sizes={"quick": SizeSpec(note=MNIST_NOTE + " 100 updates are 1,600 to 102,400 samples; the learning rate "
                                 "stays the lab's 0.01 at every batch size."), "full": SizeSpec()})


def _conv1x1() -> Study:
    # One trunk (the lab's, 6 maps: 1,062 params) under three heads; only the head differs between cells.
    fc, gap_fc, conv = ("FC head, flattened (6,422 params)", "GAP + FC head (1,132 params)",
                        "1x1 conv + GAP head (1,132 params)")
    cells = {fc: {"model_args.head": "fc"}, gap_fc: {"model_args.head": "gap_fc"},
             conv: {"model_args.head": "conv1x1"}}
    return Study(
        name="conv1x1-vs-fc", version=2, lab_question="4.4", title="1x1 convolution vs fully connected head",
        question="What is the difference between a 1x1 convolution and a fully connected layer, and what is it "
                 "for? On the lab's CNN trunk: a 1x1 convolution to the classes then global average pooling (GAP), "
                 "against GAP then a fully connected layer to the classes (the same pooling, the same parameter "
                 "count), and against the lab's FC head on the flattened maps.",
        lab_answer="Mathematically they are the same: each multiplies the feature map's elements by weights and "
                    "sums. A 1x1 convolution is mainly used to reduce (or raise) the number of channels.",
        preset="mnist-cnn", cells=cells,
        claims=[
            same("With the same pooling and trunk, a 1x1 conv head does as well as an FC head.", conv, gap_fc),
            higher("The FC head on the flattened maps (keeps positions, 5.7x the parameters) is ahead of the "
                   "1x1 conv + GAP head.", fc, conv),
        ],
        sizes={"quick": SizeSpec(note=MNIST_NOTE), "full": SizeSpec()})


def _residual() -> Study:
    grid = {"model_args.residual": [False, True], "model_args.blocks": [0, 3]}

    def label(c: dict) -> str:
        return ("residual" if c["model_args.residual"] else "plain") + f", {2 + 2 * c['model_args.blocks']} convs"

    return Study(
        name="residual", version=1, lab_question="4.5, 4.7", title="Residual learning in the CIFAR-10 net",
        question="Why does residual learning improve accuracy, and how is it applied when convolution shrinks the "
                 "feature maps? LeNet with shortcuts (a 1x1 projection where the width changes, the input cropped "
                 "to the valid convolution's output) against the same plain net, at LeNet's depth and with 3 extra "
                 "3x3 convolutions per stage.",
        lab_answer="The lab leaves 4.5 unanswered. 4.7: use 1x1 convolutions to match the number of channels "
                    "and the feature map size.",
        preset="cifar10-lenet", grid=grid, cells=product(grid, label),
        claims=[
            higher("Shortcuts help the deeper net.", "residual, 8 convs", "plain, 8 convs"),
            higher("Shortcuts help at LeNet's own depth.", "residual, 2 convs", "plain, 2 convs"),
            higher("With shortcuts, depth pays off.", "residual, 8 convs", "residual, 2 convs"),
        ],
        sizes={"quick": SizeSpec(overrides=CIFAR_QUICK, note=CIFAR_NOTE), "full": SizeSpec()})


def _lenet_1989() -> Study:
    grid = {"model_args.activation": ["relu", "sigmoid", "tanh"], "model_args.pool": ["max", "avg"]}

    def label(c: dict) -> str:
        return f"{c['model_args.activation']} + {c['model_args.pool']} pool"

    return Study(
        name="lenet-1989", version=2, lab_question="4.6", title="The lab's net vs LeCun's 1989 LeNet",
        question="How does the lab's network differ from LeCun's 1989 LeNet? Its sigmoid (or tanh) activations "
                 "and average pooling against the lab's ReLU and max pooling, on CIFAR-10.",
        lab_answer="The activation differs (LeNet: sigmoid, the lab: ReLU); the input size differs (CIFAR-10 "
                    "32x32, MNIST 28x28); the lab uses max pooling where LeNet used average pooling.",
        preset="cifar10-lenet", grid=grid, cells=product(grid, label),
        claims=[
            higher("The lab's ReLU + max pooling beats the 1989 sigmoid + average pooling.", "relu + max pool",
                   "sigmoid + avg pool"),
            higher("ReLU beats sigmoid (both with max pooling).", "relu + max pool", "sigmoid + max pool"),
            higher("Max pooling beats average pooling (both with ReLU).", "relu + max pool", "relu + avg pool"),
            higher("The lab's net beats tanh + average pooling (LeNet-5's choice).", "relu + max pool",
                   "tanh + avg pool"),
        ],
        sizes={"quick": SizeSpec(overrides=CIFAR_QUICK, shows_claims=[2, 3], note=CIFAR_NOTE + " Sigmoid nets start "
                                 "slowly: a short run exaggerates their gap, so the two sigmoid claims are not shown "
                                 "at this size."), "full": SizeSpec()})


def _raise_accuracy() -> Study:
    cells = {"baseline": {}, "dropout 0.3": {"model_args.dropout": 0.3}, "two 3x3 convs": {"model_args.conv": "3x3x2"},
             "augmentation": {"augment": True}, "weight decay 5e-4": {"weight_decay": 5e-4},
             "2x epochs": {"epochs": 20}, "cosine lr": {"lr_schedule": "cosine"},
             "one-cycle lr": {"lr_schedule": "onecycle"}, "label smoothing 0.1": {"label_smoothing": 0.1}}
    return Study(
        name="raise-accuracy", version=2, lab_question="4.8", title="Ways to raise accuracy",
        question="What else raises the CIFAR-10 net's accuracy? Dropout, two 3x3 convolutions instead of one 5x5, "
                 "augmentation, weight decay, more epochs, a learning-rate schedule and label smoothing, each "
                 "against the baseline.",
        lab_answer="Use dropout against overfitting; replace a large kernel by several small ones, e.g. two 3x3 "
                    "convolutions for one 5x5.",
        preset="cifar10-lenet", cells=cells,  # one change at a time against the baseline: listed cells
        claims=[higher(f"{label[0].upper() + label[1:]} raises accuracy.", label, "baseline")
                for label in cells if label != "baseline"],
        sizes={"quick": SizeSpec(overrides=CIFAR_QUICK, cells={"2x epochs": {"epochs": 6}}, shows_claims=[1, 4, 5, 6, 7],
                                 note=CIFAR_NOTE + " Dropout, augmentation and weight decay fight overfitting, "
                                      "which 3 epochs hardly reach: their claims are not shown at this size."),
               "full": SizeSpec()})


# The lab's VGG recipe (cifar10-vgg), every fast ingredient off: the ladder's first rung.
LAB_VGG = {"model": "vgg", "optimizer": "adam", "lr": 1e-3, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0,
           "batch_size": 128, "test_batch_size": 128, "label_smoothing": 0.0, "lr_schedule": "none",
           "bias_lr_scale": 1.0, "lookahead": False, "whiten_bias_epochs": None, "translate": 4, "padding": "zeros",
           "flip": "random", "tta": 0, "mean": [0.4914, 0.4822, 0.4465], "std": [0.2023, 0.1994, 0.2010]}
PLAIN_NET = {"model": "fastnet", "model_args.whiten": False, "model_args.dirac": False,
             "model_args.fixed_bn_scale": False}
# Each rung adds one ingredient to the one below; the last is cifar10-fast itself.
RUNGS = [("lab VGG recipe", LAB_VGG), ("+ fast net (plain)", PLAIN_NET),
         ("+ Nesterov SGD, batch 1024, label smoothing, triangle lr",
          {"optimizer": "sgd", "lr": 1.5, "momentum": 0.85, "nesterov": True, "weight_decay": 1.33e-3,
           "batch_size": 1024, "test_batch_size": 2000, "label_smoothing": 0.2, "lr_schedule": "triangle"}),
         ("+ fixed BN scale, BN bias lr x64", {"model_args.fixed_bn_scale": True, "bias_lr_scale": 64.0}),
         ("+ dirac init", {"model_args.dirac": True}),
         ("+ whitening", {"model_args.whiten": True, "whiten_bias_epochs": 3}),
         ("+ lookahead", {"lookahead": True}),
         ("+ alternating flip, translate 2", {"translate": 2, "padding": "reflect", "flip": "alternating"}),
         ("+ TTA (cifar10-fast)", {"tta": 2, "mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]})]
QUICK_WIDTHS = {"model_args.widths": [16, 32, 32]}
QUICK_VGG = {"model_args.cfg": [16, "M", 32, "M", 64, "M", 64, "M", 64, "M"]}


def _ladder_cells() -> dict[str, dict[str, Any]]:
    cells, values = {}, {}
    for label, step in RUNGS:
        values = {**values, **step}
        cells[label] = values
    return cells


def _ladder() -> Study:
    cells = _ladder_cells()
    labels = list(cells)
    return Study(
        name="raise-accuracy-ladder", version=1, lab_question="4.8", title="From the lab's VGG to the fast recipe",
        question="How far can CIFAR-10 accuracy be raised, and by what? The lab's VGG recipe, then airbench94's "
                 "net and each ingredient of its recipe (Jordan 2024, arXiv 2404.00498) added one at a time, "
                 "each rung against the one below, with the time each costs.",
        lab_answer="Use dropout against overfitting; replace a large kernel by several small ones, e.g. two 3x3 "
                    "convolutions for one 5x5 (the simplified VGG reaches 82.87%).",
        preset="cifar10-fast", cells=cells,
        claims=[higher(f"{b[2:]} raises accuracy over {a}.", b, a) for a, b in zip(labels, labels[1:], strict=False)],
        sizes={"quick": SizeSpec(overrides={"train_limit": 2048, "test_limit": 500, "epochs": 4},
                                 cells={label: QUICK_VGG if i == 0 else QUICK_WIDTHS | ({"batch_size": 256} if i > 1 else {})
                                        for i, label in enumerate(labels)},
                                 shows_claims=False,
                                 note="Narrow nets (fast net 16/32/32, VGG 16-64 channels), 4 epochs on 2,048 images "
                                      "tested on 500, batch 256 for 1024: 8 steps an epoch, lookahead starts after "
                                      "epoch 3, and the ingredients were tuned for the full net at 10 epochs, so "
                                      "their gains may not show or may reverse; CPU seconds are not the GPU's. It "
                                      "tests the plumbing and the rung order; run the full size on a GPU."),
               "full": SizeSpec(note="The real recipe on all 50,000 images, 10 epochs (a GPU study: about 3 s a "
                                     "fast rung on an H100, minutes a rung on 2 CPU cores).")})


# Estimated minutes for 5 seeds of the quick size on 2 CPU cores: bench/results/study_cells.json (commit 4fcbfa3),
# one seed of every cell, single-thread CPU seconds x 5 / 2; noisy, without the service's per-job overhead.
QUICK_MINUTES = {"fc-vs-cnn": 0.9, "lenet-vs-vgg": 5.3, "shuffle": 1.7, "normalization": 0.8, "epoch-vs-batch": 2.1,
                 "conv1x1-vs-fc": 1.5, "residual": 2.9, "lenet-1989": 3.1, "raise-accuracy": 4.8,
                 # measured whole: python -m bench.ladder (bench/results/ladder_quick.json, commit ca56e55), all 45
                 # jobs through fit_pack in 3.0 min at load 0.5-1.9 on this shared 2-core machine
                 "raise-accuracy-ladder": 3.0}


def _with_minutes(study: Study) -> Study:
    quick = study.sizes["quick"].model_copy(update={"minutes_5_seeds": QUICK_MINUTES.get(study.name)})
    return study.model_copy(update={"sizes": {**study.sizes, "quick": quick}})


def _catalog() -> dict[str, Study]:
    studies = [_fc_vs_cnn(), _lenet_vs_vgg(), _shuffle(), _normalization(), _epoch_vs_batch(), _conv1x1(),
               _residual(), _lenet_1989(), _raise_accuracy(), _ladder()]
    return {s.name: _with_minutes(s) for s in studies}


STUDIES: dict[str, Study] = _catalog()


def study_names() -> list[str]:
    return list(STUDIES)


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise KeyError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}")
    return STUDIES[name]
