"""The handout's questions in its order: each with the lab's own answer and the study claims (and report tables)
that answer it from the data. Torch- and SQL-free; shared/store/handout.py fills in the data.

The lab document (the seed) asks its questions in three places: the conclusions of sections 1.5 and 1.6 (MNIST),
the accuracies of sections 2 and 3 (CIFAR-10) and the closing questions 4.1-4.8. Every question names one study
and the indexes of the claims of it that answer it; 4.5 and 4.7 share the `residual` study.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.lab.studies import STUDIES, get_study


class Question(BaseModel):
    """One question of the handout, where the data answers it, and the lab's answer to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    section: str = Field(description="the handout's section, e.g. 1.5 or 4.2")
    question: str = Field(description="the question as the handout asks it, in English")
    lab_answer: str = Field(description="the handout's own answer, in English ('' where it leaves it open)")
    study: str = Field(description="the study whose claims answer it")
    claims: list[int] = Field(description="indexes of the study's claims that answer this question")
    tables: list[str] = Field(default_factory=list, description="titles of the report's tables on the same question")

    @model_validator(mode="after")
    def _known(self) -> "Question":
        study = get_study(self.study)
        if any(not 0 <= i < len(study.claims) for i in self.claims):
            raise ValueError(f"{self.section}: claim indexes {self.claims} outside {self.study}'s claims")
        return self


FC_VS_CNN, PERMUTED, LENET_VS_VGG = ("FC vs CNN at equal parameters (MNIST)", "Normal vs permuted pixels (MNIST)",
                                     "LeNet vs VGG (CIFAR-10)")  # shared/store/report.py TABLES' titles

QUESTIONS: list[Question] = [
    Question(section="1.5", question="With the same number of parameters, is the CNN more accurate than the small "
             "fully connected network on MNIST?", lab_answer=STUDIES["fc-vs-cnn"].lab_answer.split(" After ")[0],
             study="fc-vs-cnn", claims=[0], tables=[FC_VS_CNN]),
    Question(section="1.6", question="If the pixels of every image are shuffled by one permutation, what happens to "
             "the FC network and to the CNN?", lab_answer="The FC network performs about as before, but the CNN "
             "clearly drops: convolution uses the local relations between pixels, which the permutation destroys.",
             study="fc-vs-cnn", claims=[1, 2], tables=[PERMUTED]),
    Question(section="2, 3", question="Does the simplified VGG classify CIFAR-10 better than the LeNet-style net?",
             lab_answer=STUDIES["lenet-vs-vgg"].lab_answer, study="lenet-vs-vgg", claims=[0], tables=[LENET_VS_VGG]),
    Question(section="4.1", question="What difference do the values of the DataLoader's shuffle make?",
             lab_answer=STUDIES["shuffle"].lab_answer, study="shuffle", claims=[0, 1, 2]),
    Question(section="4.2", question="What difference do different values in transforms.Normalize make?",
             lab_answer=STUDIES["normalization"].lab_answer, study="normalization", claims=[0, 1]),
    Question(section="4.3", question="What is the difference between an epoch and a batch?",
             lab_answer=STUDIES["epoch-vs-batch"].lab_answer, study="epoch-vs-batch", claims=[0, 1, 2]),
    Question(section="4.4", question="What is the difference between a 1x1 convolution and a fully connected layer, "
             "and what is it mainly for?", lab_answer=STUDIES["conv1x1-vs-fc"].lab_answer, study="conv1x1-vs-fc",
             claims=[0, 1]),
    Question(section="4.5", question="Why can residual learning raise accuracy?", lab_answer="",
             study="residual", claims=[0, 1, 2]),
    Question(section="4.6", question="How does the network of code exercise 2 differ from LeCun's 1989 LeNet?",
             lab_answer=STUDIES["lenet-1989"].lab_answer, study="lenet-1989", claims=[0, 1, 2, 3]),
    Question(section="4.7", question="Convolution shrinks the feature maps in code exercise 2: how can residual "
             "learning be applied?", lab_answer="Use 1x1 convolutions to match the number of channels and the "
             "feature map size.", study="residual", claims=[0]),
    Question(section="4.8", question="What methods can raise the accuracy further?",
             lab_answer=STUDIES["raise-accuracy"].lab_answer, study="raise-accuracy",
             claims=list(range(len(STUDIES["raise-accuracy"].claims)))),
]


def handout_studies() -> list[str]:
    """The studies the handout's questions name, each once, in the handout's order."""
    return list(dict.fromkeys(q.study for q in QUESTIONS))
