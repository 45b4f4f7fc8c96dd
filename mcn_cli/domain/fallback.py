"""The emergency decision flow of brochure section 9.2, as a pure function.

The flow asks yes/no questions; ``decide`` walks it with an ``answer`` callable, asking only
the questions the path reaches, and returns the outcome and the path taken:

- 2. network available? yes: payment commitment from the online answer; no: 3.
- 3. patient known in the pharmacy's records? yes: 4; no: 6 (step 5 trusts the last known
  online consultation, which an unknown patient does not have).
- 4. dispensing date inside the coverage of the commitment found? yes: reuse it; no: 5.
- 5. confident enough? yes: basic principle (last known consultation); no: 6.
- 6. SIS card? yes: SIS commitment; no: 7.
- 7. another document (vignette)? yes: 8; no: model 704.
- 8. confident enough with that document? yes: basic principle (document); no: model 704.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Question(StrEnum):
    """The flow's questions; the value is the stable key used in JSON and as a flag name."""

    NETWORK = "network"  # 2. network available?
    KNOWN = "known"  # 3. patient known in the pharmacy's records?
    COVERED = "covered"  # 4. dispensing date inside the coverage of a commitment found?
    CONFIDENT = "confident"  # 5. pharmacist confident enough?
    SIS_CARD = "sis-card"  # 6. patient has a SIS card?
    DOCUMENT = "document"  # 7. another document (vignette)?
    DOCUMENT_CONFIDENT = "document-confident"  # 8. confident enough with that document?

    @property
    def step(self) -> int:
        return _STEPS[self]


_STEPS = {
    Question.NETWORK: 2,
    Question.KNOWN: 3,
    Question.COVERED: 4,
    Question.CONFIDENT: 5,
    Question.SIS_CARD: 6,
    Question.DOCUMENT: 7,
    Question.DOCUMENT_CONFIDENT: 8,
}


class Outcome(StrEnum):
    """Where the flow ends; the value is stable (JSON)."""

    COMMITMENT = "commitment"  # computed with the online answer
    COMMITMENT_REUSE = "commitment-reuse"  # computed with a cached commitment covering the date
    BASIC_PRINCIPLE = "basic-principle"  # computed with the last known online consultation
    SIS_COMMITMENT = "sis-commitment"  # computed with the SIS card
    BASIC_PRINCIPLE_DOCUMENT = "basic-principle-document"  # computed with another document
    MODEL_704 = "model-704"  # dispense on model 704 (annex 30 of the health-care regulation)


@dataclass(frozen=True)
class Step:
    question: Question
    answer: bool


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    path: tuple[Step, ...]


def decide(answer: Callable[[Question], bool]) -> Decision:
    """Walk the flow from step 2 (step 1, the online consultation, was tried)."""
    path: list[Step] = []

    def ask(question: Question) -> bool:
        reply = answer(question)
        path.append(Step(question, reply))
        return reply

    def done(outcome: Outcome) -> Decision:
        return Decision(outcome, tuple(path))

    if ask(Question.NETWORK):
        return done(Outcome.COMMITMENT)
    if ask(Question.KNOWN):
        if ask(Question.COVERED):
            return done(Outcome.COMMITMENT_REUSE)
        if ask(Question.CONFIDENT):  # only a known patient has a last known consultation
            return done(Outcome.BASIC_PRINCIPLE)
    if ask(Question.SIS_CARD):
        return done(Outcome.SIS_COMMITMENT)
    if ask(Question.DOCUMENT) and ask(Question.DOCUMENT_CONFIDENT):
        return done(Outcome.BASIC_PRINCIPLE_DOCUMENT)
    return done(Outcome.MODEL_704)
