from __future__ import annotations

import pytest

from mcn_cli.domain.fallback import Outcome, Question, decide

Q = Question


def walk(**answers: bool):
    asked: list[Question] = []

    def answer(question: Question) -> bool:
        asked.append(question)
        return answers[question.name.lower()]

    decision = decide(answer)
    assert [s.question for s in decision.path] == asked
    return decision


@pytest.mark.parametrize(
    ("answers", "outcome", "steps"),
    [
        ({"network": True}, Outcome.COMMITMENT, [2]),
        ({"network": False, "known": True, "covered": True}, Outcome.COMMITMENT_REUSE, [2, 3, 4]),
        (
            {"network": False, "known": True, "covered": False, "confident": True},
            Outcome.BASIC_PRINCIPLE,
            [2, 3, 4, 5],
        ),
        # an unknown patient has no last known consultation: step 5 is not asked (brochure 9.2)
        ({"network": False, "known": False, "sis_card": True}, Outcome.SIS_COMMITMENT, [2, 3, 6]),
        (
            {"network": False, "known": True, "covered": False, "confident": False, "sis_card": True},
            Outcome.SIS_COMMITMENT,
            [2, 3, 4, 5, 6],
        ),
        (
            {
                "network": False,
                "known": False,
                "sis_card": False,
                "document": True,
                "document_confident": True,
            },
            Outcome.BASIC_PRINCIPLE_DOCUMENT,
            [2, 3, 6, 7, 8],
        ),
        (
            {
                "network": False,
                "known": False,
                "sis_card": False,
                "document": True,
                "document_confident": False,
            },
            Outcome.MODEL_704,
            [2, 3, 6, 7, 8],
        ),
        (
            {
                "network": False,
                "known": True,
                "covered": False,
                "confident": False,
                "sis_card": False,
                "document": False,
            },
            Outcome.MODEL_704,
            [2, 3, 4, 5, 6, 7],
        ),
    ],
)
def test_every_outcome_and_its_path(answers, outcome, steps):
    decision = walk(**answers)
    assert decision.outcome is outcome
    assert [s.question.step for s in decision.path] == steps
    assert all(s.answer == answers[s.question.name.lower()] for s in decision.path)
