"""The label set, labels (saved at once, with an undo history), progress against a
target, which document to label next (random, diverse, keyword, second opinion), and short
leases that keep two annotators of a project off the same document."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import ServiceError, users
from db.embeddings import load_embeddings as load_embeddings  # the cache lives in db,
from db.embeddings import missing_embeddings as missing_embeddings  # the worker fills it
from db.models import (
    ANNOTATOR,
    FINISHED_STATUSES,
    HUMAN,
    OWNER,
    Document,
    DocumentLease,
    Label,
    LabelClass,
    LabelEvent,
    Run,
    utcnow,
)
from db.writes import retry_busy, user_write

DEFAULT_TARGET_TOTAL = 30
# "second": documents another annotator labelled and you have not (for agreement).
STRATEGIES = ("random", "diverse", "keyword", "second")
LEASE_SECONDS = 300  # how long a shown document is kept from other annotators

# ---------------------------------------------------------------- label set


def list_label_classes(session: Session, project_id: int) -> list[LabelClass]:
    return list(session.scalars(
        select(LabelClass).where(LabelClass.project_id == project_id)
        .order_by(LabelClass.position, LabelClass.id)
    ))


MAX_LABEL_NAME = 200  # characters

# Words that carry no meaning of their own: never a label word ("An awful film" -> "awful").
# Negations are not here: for "Not spam", "spam" would say the opposite.
STOP_WORDS = frozenset("""
a an the of in on at to for from by with about into onto over under than as and or but nor
so if then this that these those it its is are was were be been being am do does did has have
had i me my we our you your he him his she her they them their what which who whom whose
there here very just also too more most much many some any each every all both either
neither one ones other such own same etc vs via per
""".split())


def suggest_word(label_name: str) -> str:
    """A first guess at a label word: the label's first content word, lower-cased (never a
    stop word such as "an" or "the"; a name of stop words only gives its first word)."""
    words = [w.lower() for w in "".join(ch if ch.isalnum() else " " for ch in label_name).split()]
    content = [w for w in words if w not in STOP_WORDS and not w.isdigit()]
    return (content or words or [""])[0]


def label_name_problem(name: str) -> str | None:
    """What is wrong with a label name, in words that say what to fix; None when it is fine
    (the page shows this under the field as soon as it is typed or pasted)."""
    name = (name or "").strip()
    if not name:
        return "A label needs a name."
    if len(name) > MAX_LABEL_NAME:
        return (f"Label names are at most {MAX_LABEL_NAME} characters; this one has "
                f"{len(name):,}. Shorten it (the guideline can hold the rest).")
    return None


def _clean_label_name(session: Session, project_id: int, name: str, exclude_id=None) -> str:
    name = (name or "").strip()
    if (problem := label_name_problem(name)) is not None:
        raise ServiceError(problem)
    stmt = select(LabelClass.id).where(
        LabelClass.project_id == project_id, func.lower(LabelClass.name) == name.lower()
    )
    if exclude_id is not None:
        stmt = stmt.where(LabelClass.id != exclude_id)
    if session.scalar(stmt) is not None:
        raise ServiceError(f"There is already a label called {name!r}.")
    return name


def _clean_word(word: str) -> str:
    word = (word or "").strip()
    if len(word) > 100:
        raise ServiceError("A label word can have at most 100 characters.")
    return word


@user_write
def add_label_class(
    session: Session, project_id: int, name: str, description: str = "", verbalizer_word: str = ""
) -> LabelClass:
    users.require(session, project_id, OWNER)
    name = _clean_label_name(session, project_id, name)
    position = session.scalar(
        select(func.coalesce(func.max(LabelClass.position), -1))
        .where(LabelClass.project_id == project_id)
    ) + 1
    cls = LabelClass(
        project_id=project_id, name=name, description=(description or "").strip(),
        verbalizer_word=_clean_word(verbalizer_word) or suggest_word(name), position=position,
    )
    session.add(cls)
    session.flush()
    return cls


@user_write
def update_label_class(
    session: Session, label_class_id: int, *, name: str | None = None,
    description: str | None = None, verbalizer_word: str | None = None,
) -> LabelClass:
    cls = session.get(LabelClass, label_class_id)
    if cls is None:
        raise ServiceError("That label no longer exists.")
    users.require(session, cls.project_id, OWNER)
    if name is not None:
        cls.name = _clean_label_name(session, cls.project_id, name, exclude_id=cls.id)
    if description is not None:
        cls.description = description.strip()
    if verbalizer_word is not None:
        cls.verbalizer_word = _clean_word(verbalizer_word)
    return cls


@user_write
def delete_label_class(session: Session, label_class_id: int) -> int:
    """Delete a label class and the labels that use it; returns how many labels went."""
    cls = session.get(LabelClass, label_class_id)
    if cls is None:
        return 0
    users.require(session, cls.project_id, OWNER)
    n = session.scalar(
        select(func.count()).select_from(Label).where(Label.label_class_id == label_class_id)
    ) or 0
    session.execute(delete(Label).where(Label.label_class_id == label_class_id))
    session.execute(delete(LabelClass).where(LabelClass.id == label_class_id))
    session.expire_all()
    return n


# ---------------------------------------------------------------- labels


def _write_label(session, project_id, document_id, class_id, source, user_id=None) -> None:
    """Set (or with class_id None, remove) a document's label, without an event."""
    label = session.scalar(select(Label).where(Label.document_id == document_id))
    if class_id is None:
        if label is not None:
            session.delete(label)
    elif label is None:
        session.add(Label(project_id=project_id, document_id=document_id,
                          label_class_id=class_id, source=source or HUMAN, user_id=user_id))
    else:
        label.label_class_id = class_id
        label.source = source or HUMAN
        label.user_id = user_id


@user_write
def set_label(
    session: Session, project_id: int, document_id: int, label_class_id: int | None,
    source: str = HUMAN,
) -> LabelEvent | None:
    """Label a document (or remove its label with None), record the change and who made it.

    Returns the event, or None when nothing changed. A second annotator who gives the same
    label still gets an event: that is their vote in the agreement view.
    """
    users.require(session, project_id, ANNOTATOR)
    who = users.actor_id(session)
    doc = session.get(Document, document_id)
    if doc is None or doc.project_id != project_id:
        raise ServiceError("That document is not in this project.")
    if label_class_id is not None:
        cls = session.get(LabelClass, label_class_id)
        if cls is None or cls.project_id != project_id:
            raise ServiceError("That label is not in this project.")
    current = session.scalar(select(Label).where(Label.document_id == document_id))
    old_class = current.label_class_id if current else None
    old_source = current.source if current else None
    if old_class == label_class_id and (
            label_class_id is None or (old_source == source and current.user_id == who)):
        return None
    _write_label(session, project_id, document_id, label_class_id, source, who)
    event = LabelEvent(
        project_id=project_id, document_id=document_id,
        old_label_class_id=old_class, new_label_class_id=label_class_id,
        old_source=old_source, new_source=source if label_class_id is not None else None,
        user_id=who,
    )
    session.add(event)
    session.flush()
    return event


def remove_label(session: Session, project_id: int, document_id: int) -> LabelEvent | None:
    return set_label(session, project_id, document_id, None)


@user_write
def undo(session: Session, project_id: int) -> LabelEvent | None:
    """Undo your latest change that still stands; returns that event (None: nothing to undo).

    "Yours" is the acting user's (a trusted caller without a user undoes anyone's). A change
    that someone else has changed again since does not stand any more: undoing it would
    overwrite their work, so it is passed over."""
    users.require(session, project_id, ANNOTATOR)
    who = users.actor_id(session)
    live = (LabelEvent.project_id == project_id) & LabelEvent.undone.is_(False)
    mine = select(LabelEvent).where(live).order_by(LabelEvent.id.desc()).limit(200)
    if who is not None:
        mine = mine.where(LabelEvent.user_id == who)
    event = None
    for candidate in session.scalars(mine):
        later = session.scalar(select(LabelEvent.id).where(
            live, LabelEvent.document_id == candidate.document_id, LabelEvent.id > candidate.id
        ).limit(1))
        if later is None:
            event = candidate
            break
    if event is None:
        return None
    old_class = event.old_label_class_id
    if old_class is not None and session.get(LabelClass, old_class) is None:
        old_class = None  # the class was deleted since
    # The label goes back to whoever set it before (the newest live event before this one).
    before = session.scalar(select(LabelEvent.user_id).where(
        live, LabelEvent.document_id == event.document_id, LabelEvent.id < event.id
    ).order_by(LabelEvent.id.desc()).limit(1))
    _write_label(session, project_id, event.document_id, old_class, event.old_source, before)
    event.undone = True
    session.flush()
    return event


def label_of(session: Session, document_id: int) -> Label | None:
    return session.scalar(select(Label).where(Label.document_id == document_id))


def labelled_examples(session: Session, project_id: int, limit: int | None = None):
    """(Document, LabelClass) pairs of the labelled documents, oldest label first."""
    stmt = (
        select(Document, LabelClass)
        .join(Label, Label.document_id == Document.id)
        .join(LabelClass, LabelClass.id == Label.label_class_id)
        .where(Label.project_id == project_id)
        .order_by(Label.id)
    )
    if limit:
        stmt = stmt.limit(limit)
    return list(session.execute(stmt).tuples())


def labels_table(session: Session, project_id: int, snippet: int = 120) -> pd.DataFrame:
    """All labels of the project for review: document, snippet, label, who, source, when."""
    rows = session.execute(
        select(Document.id, Document.text, LabelClass.name, Label.user_id, Label.source,
               Label.held_out, Label.updated_at)
        .join(Label, Label.document_id == Document.id)
        .join(LabelClass, LabelClass.id == Label.label_class_id)
        .where(Label.project_id == project_id)
        .order_by(Label.updated_at.desc(), Label.id.desc())
    ).all()
    who = users.names(session, [r[3] for r in rows])
    return pd.DataFrame(
        [(i, t if len(t) <= snippet else t[: snippet - 1] + "…", n, who.get(b, "—"), s, h, u)
         for i, t, n, b, s, h, u in rows],
        columns=["document", "text", "label", "labelled by", "source", "held_out", "updated"],
    )


# ---------------------------------------------------------------- progress


@dataclass(frozen=True)
class ClassCount:
    label_class_id: int
    name: str
    count: int
    target: int


def class_targets(n_classes: int, total: int = DEFAULT_TARGET_TOTAL) -> list[int]:
    """A balanced split of `total` over the classes (the first ones get the remainder)."""
    if n_classes <= 0:
        return []
    base, extra = divmod(max(total, 0), n_classes)
    return [base + (1 if i < extra else 0) for i in range(n_classes)]


def class_counts(
    session: Session, project_id: int, total: int = DEFAULT_TARGET_TOTAL
) -> list[ClassCount]:
    classes = list_label_classes(session, project_id)
    counts = dict(session.execute(
        select(Label.label_class_id, func.count()).where(Label.project_id == project_id)
        .group_by(Label.label_class_id)
    ).tuples().all())
    targets = class_targets(len(classes), total)
    return [ClassCount(c.id, c.name, counts.get(c.id, 0), t)
            for c, t in zip(classes, targets, strict=True)]


def balance_warning(counts: Sequence[ClassCount]) -> str | None:
    """A warning when the labels are unbalanced enough to bias the classifier."""
    if len(counts) < 2:
        return None
    values = [c.count for c in counts]
    if sum(values) < len(counts):
        return None  # too early to judge
    empty = [c.name for c in counts if c.count == 0]
    if empty:
        return "No labels yet for: " + ", ".join(empty) + ". Every class needs examples."
    lo, hi = min(values), max(values)
    if hi >= 2 * lo and hi - lo >= 3:
        small = min(counts, key=lambda c: c.count).name
        big = max(counts, key=lambda c: c.count).name
        return (f"Unbalanced labels: {big} has {hi}, {small} only {lo}. Try keyword search "
                "to find examples of the smaller classes.")
    return None


def next_step(counts: Sequence[ClassCount], target: int,
              has_prompt: bool) -> tuple[str, str] | None:
    """(page, link text) for the labelling page once the target is reached and every class
    has a label: the prompt next, or training when a prompt is saved already. None before."""
    total = sum(c.count for c in counts)
    if len(counts) < 2 or total < target or any(c.count == 0 for c in counts):
        return None
    reached = f"{total} / {target} labels, the target is reached"
    if has_prompt:
        return ("views/train.py", f"Next: Train ({reached} and a prompt is saved)")
    return ("views/prompt.py", f"Next: Prompt design ({reached})")


# ---------------------------------------------------------------- next document


def _unlabelled(project_id: int, exclude: Iterable[int] = ()):
    stmt = select(Document.id).where(
        Document.project_id == project_id,
        ~select(Label.id).where(Label.document_id == Document.id).exists(),
    )
    exclude = list(exclude)
    if exclude:
        stmt = stmt.where(Document.id.not_in(exclude))
    return stmt


def unlabelled_count(session: Session, project_id: int) -> int:
    return session.scalar(select(func.count()).select_from(_unlabelled(project_id).subquery())) or 0


def next_random(
    session: Session, project_id: int, exclude: Iterable[int] = (), seed: int | None = None
) -> int | None:
    ids = session.scalars(_unlabelled(project_id, exclude)).all()
    if not ids:
        return None
    return random.Random(seed).choice(ids)


def keyword_matches(
    session: Session, project_id: int, keyword: str, exclude: Iterable[int] = (), limit: int = 50
) -> list[int]:
    """Unlabelled documents containing `keyword` (case-insensitive), oldest first."""
    keyword = (keyword or "").strip()
    if not keyword:
        raise ServiceError("Type a keyword to search for.")
    pattern = "%" + keyword.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    stmt = _unlabelled(project_id, exclude).where(
        func.lower(Document.text).like(pattern, escape="\\")
        | func.lower(func.coalesce(Document.text_b, "")).like(pattern, escape="\\")
    ).order_by(Document.id).limit(limit)
    return list(session.scalars(stmt))


def next_keyword(session, project_id, keyword, exclude=()) -> int | None:
    found = keyword_matches(session, project_id, keyword, exclude, limit=1)
    return found[0] if found else None


def next_second_opinion(session: Session, project_id: int, exclude: Iterable[int] = ()
                        ) -> int | None:
    """The oldest document that another annotator labelled and the acting user has not
    (a label of theirs counts as long as it is not undone): a second, blind opinion for the
    agreement view."""
    who = users.actor_id(session)
    live = (LabelEvent.project_id == project_id) & LabelEvent.undone.is_(False)
    mine = select(LabelEvent.document_id).where(live, LabelEvent.user_id == who)
    stmt = (select(Label.document_id)
            .where(Label.project_id == project_id, Label.source == HUMAN,
                   Label.user_id.is_not(None), Label.user_id != who,
                   Label.document_id.not_in(mine))
            .order_by(Label.document_id))
    exclude = list(exclude)
    if exclude:
        stmt = stmt.where(Label.document_id.not_in(exclude))
    return session.scalar(stmt.limit(1))


# -- leases: two annotators of a project are never shown the same document at once


def leased_elsewhere(session: Session, project_id: int, holder: str) -> set[int]:
    """Documents of the project that another labelling session is showing right now."""
    return set(session.scalars(select(DocumentLease.document_id).where(
        DocumentLease.project_id == project_id, DocumentLease.holder != holder,
        DocumentLease.expires_at > utcnow())))


@user_write
def claim_document(session: Session, project_id: int, document_id: int, holder: str,
                   seconds: float = LEASE_SECONDS) -> bool:
    """Hold `document_id` for the labelling session `holder` (one document per holder; its
    earlier lease ends). False when another session holds it: show it something else.
    Calling it again for the shown document renews the lease."""
    now = utcnow()
    lease = session.get(DocumentLease, document_id)
    if lease is not None and lease.holder != holder and lease.expires_at > now:
        return False
    session.execute(delete(DocumentLease).where(DocumentLease.holder == holder,
                                                DocumentLease.document_id != document_id))
    expires = now + timedelta(seconds=seconds)
    if lease is None:
        try:  # PostgreSQL: a second session inserting the same document at once loses here
            with session.begin_nested():
                session.add(DocumentLease(document_id=document_id, project_id=project_id,
                                          holder=holder, user_id=users.actor_id(session),
                                          expires_at=expires))
        except IntegrityError:
            return False
    else:
        lease.holder, lease.user_id, lease.expires_at = holder, users.actor_id(session), expires
    return True


@user_write
def release_documents(session: Session, holder: str) -> None:
    """End the leases of a labelling session (it left the page or finished)."""
    session.execute(delete(DocumentLease).where(DocumentLease.holder == holder))


# -- diverse: k-means over cached mean-pooled embeddings

def _embed_runs(project_id: int, model: str):
    return (select(Run)
            .where(Run.project_id == project_id, Run.kind == "embed",
                   Run.config["model"].as_string() == model)
            .order_by(Run.id.desc()).limit(1))


def embedding_run(session: Session, project_id: int, model: str) -> Run | None:
    """The queued or running "embed" run of this project and model, if any."""
    return session.scalar(
        _embed_runs(project_id, model).where(Run.status.not_in(FINISHED_STATUSES)))


def last_embedding_run(session: Session, project_id: int, model: str) -> Run | None:
    """The newest "embed" run of this project and model, whatever its status."""
    return session.scalar(_embed_runs(project_id, model))


def start_embedding(session: Session, project_id: int, model: str) -> Run:
    """Queue a background run that embeds the documents still missing a vector for `model`
    (the worker does it, so the page stays usable). One at a time per project and model:
    the run already queued or running is returned instead of a second one."""
    from db import jobs

    users.require(session, project_id, ANNOTATOR)
    existing = embedding_run(session, project_id, model)
    if existing is not None:
        return existing
    try:  # enqueue ends the read transaction above before it takes the write lock
        return retry_busy(lambda: jobs.enqueue(session, project_id=project_id, kind="embed",
                                               config={"model": model}), "start embedding")
    except jobs.JobError as exc:
        raise ServiceError(str(exc)) from exc


@dataclass(frozen=True)
class Clusters:
    """k-means over the document embeddings: cluster of each document, and for each
    cluster its documents ordered by distance to the centroid."""

    ids: np.ndarray  # (N,)
    assignment: np.ndarray  # (N,) cluster index
    members: list[list[int]]  # per cluster: document ids, nearest to the centroid first


def cluster_documents(ids: np.ndarray, vectors: np.ndarray, k: int, seed: int = 0) -> Clusters:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    k = max(1, min(k, len(ids)))
    algo = MiniBatchKMeans if len(ids) > 20_000 else KMeans
    km = algo(n_clusters=k, random_state=seed, n_init=3).fit(vectors)
    dist = np.linalg.norm(vectors - km.cluster_centers_[km.labels_], axis=1)  # (N,)
    members = []
    for c in range(k):
        idx = np.flatnonzero(km.labels_ == c)
        members.append([int(ids[i]) for i in idx[np.argsort(dist[idx])]])
    return Clusters(ids=ids, assignment=km.labels_.copy(), members=members)


def default_k(n_classes: int, target_total: int = DEFAULT_TARGET_TOTAL) -> int:
    """As many clusters as the labelling target (one document per cluster)."""
    return max(target_total, 2 * max(n_classes, 1))


def next_diverse(
    session: Session, project_id: int, clusters: Clusters, exclude: Iterable[int] = ()
) -> int | None:
    """The most central unlabelled document of the cluster with the fewest labelled (or
    skipped) documents, so consecutive picks cover different clusters."""
    labelled = set(session.scalars(select(Label.document_id).where(Label.project_id == project_id)))
    seen = labelled | set(exclude)
    best, best_key = None, None
    for c, docs in enumerate(clusters.members):
        covered = sum(1 for d in docs if d in seen)
        candidate = next((d for d in docs if d not in seen), None)
        if candidate is None:
            continue
        key = (covered, c)
        if best_key is None or key < best_key:
            best, best_key = candidate, key
    if best is None:  # every clustered document is done; fall back to any unlabelled one
        return next_random(session, project_id, exclude)
    return best


def get_document(session: Session, project_id: int, document_id: int) -> Document | None:
    doc = session.get(Document, document_id)
    return doc if doc is not None and doc.project_id == project_id else None


@user_write
def mark_held_out(session: Session, project_id: int, document_ids: Iterable[int], held_out=True):
    """Mark labels as held out for evaluation (part 2 uses this for the evaluation set)."""
    users.require(session, project_id, OWNER)
    session.execute(
        update(Label).where(Label.project_id == project_id, Label.document_id.in_(list(document_ids)))
        .values(held_out=held_out)
    )
