"""Inter-annotator agreement: which label each annotator gave each document (from the label
history, so a later relabel by someone else does not erase the first opinion), and Cohen's
kappa for every pair of annotators on the documents both labelled."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import combinations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import users
from db.models import VIEWER, Document, LabelClass, LabelEvent


@dataclass(frozen=True)
class PairAgreement:
    user_a: int
    user_b: int
    name_a: str
    name_b: str
    documents: int  # labelled by both
    agreed: int
    kappa: float | None  # None: not defined (fewer than 2 documents, or one class only)

    @property
    def percent(self) -> float:
        return 100.0 * self.agreed / self.documents if self.documents else 0.0


def annotations(session: Session, project_id: int) -> dict[int, dict[int, int]]:
    """user id -> {document id -> label class id}: each annotator's own latest label that is
    not undone (removing a label removes the opinion)."""
    users.require(session, project_id, VIEWER)
    rows = session.execute(
        select(LabelEvent.user_id, LabelEvent.document_id, LabelEvent.new_label_class_id)
        .where(LabelEvent.project_id == project_id, LabelEvent.undone.is_(False),
               LabelEvent.user_id.is_not(None))
        .order_by(LabelEvent.id)
    ).all()
    out: dict[int, dict[int, int]] = {}
    for user_id, doc_id, class_id in rows:  # oldest first: the newest wins
        mine = out.setdefault(user_id, {})
        if class_id is None:
            mine.pop(doc_id, None)
        else:
            mine[doc_id] = class_id
    return {u: d for u, d in out.items() if d}


def kappa(a: list[int], b: list[int]) -> float | None:
    """Cohen's kappa of two raters on the same items; None where it is not defined."""
    if len(a) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():  # one class used by both: 0/0, sklearn warns and gives nan
        warnings.simplefilter("ignore")
        value = float(cohen_kappa_score(a, b))
    return None if math.isnan(value) else value


def pairs(session: Session, project_id: int) -> list[PairAgreement]:
    """Agreement of every pair of annotators who labelled at least one document in common."""
    by_user = annotations(session, project_id)
    names = users.names(session, by_user)
    out = []
    for ua, ub in combinations(sorted(by_user), 2):
        common = sorted(set(by_user[ua]) & set(by_user[ub]))
        if not common:
            continue
        a = [by_user[ua][d] for d in common]
        b = [by_user[ub][d] for d in common]
        out.append(PairAgreement(ua, ub, names.get(ua, "?"), names.get(ub, "?"), len(common),
                                 sum(x == y for x, y in zip(a, b, strict=True)), kappa(a, b)))
    return out


def both_table(session: Session, project_id: int, user_a: int, user_b: int,
               snippet: int = 120) -> pd.DataFrame:
    """The documents both labelled, with each one's label; disagreements first."""
    by_user = annotations(session, project_id)
    a, b = by_user.get(user_a, {}), by_user.get(user_b, {})
    common = sorted(set(a) & set(b))
    classes = dict(session.execute(
        select(LabelClass.id, LabelClass.name).where(LabelClass.project_id == project_id)).all())
    texts = dict(session.execute(
        select(Document.id, Document.text).where(Document.id.in_(common))).all()) if common else {}
    names = users.names(session, [user_a, user_b])
    rows = []
    for d in common:
        text = texts.get(d, "")
        rows.append((d, text if len(text) <= snippet else text[: snippet - 1] + "…",
                     classes.get(a[d], "?"), classes.get(b[d], "?"), a[d] == b[d]))
    table = pd.DataFrame(rows, columns=["document", "text", names.get(user_a, "?"),
                                        names.get(user_b, "?"), "agree"])
    return table.sort_values(["agree", "document"], kind="stable").reset_index(drop=True)
