"""The schema: SQLAlchemy 2 typed ORM models. Migrations in db/migrations mirror these."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # stored naive, always UTC


class Base(DeclarativeBase):
    pass


# Run states. "cancelling" = cancel requested while running; the worker finishes it.
QUEUED, RUNNING, CANCELLING, CANCELLED, FAILED, SUCCEEDED = (
    "queued", "running", "cancelling", "cancelled", "failed", "succeeded",
)
FINISHED_STATUSES = (CANCELLED, FAILED, SUCCEEDED)

# Label sources.
HUMAN, ACCEPTED_PSEUDO, IMPORTED_GOLD = "human", "accepted_pseudo", "imported_gold"

# Roles on a shared project, strongest first: an owner manages the project and its runs, an
# annotator labels, a viewer only looks.
OWNER, ANNOTATOR, VIEWER = "owner", "annotator", "viewer"
ROLES = (OWNER, ANNOTATOR, VIEWER)


class User(Base):
    """A person who signs in (built-in password or OIDC), or the one local user of
    single-user mode."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)  # OIDC: the e-mail
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(300))  # None: no password sign-in
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class UserSession(Base):
    """A signed-in browser session of the built-in login; only a hash of its token is kept."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    label_classes: Mapped[list[LabelClass]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="LabelClass.position"
    )


class ProjectMember(Base):
    """Who may do what in a project (see ROLES). Admins may do everything everywhere."""

    __tablename__ = "project_members"
    __table_args__ = (UniqueConstraint("project_id", "user_id", name="uq_project_members"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))


class ImportBatch(Base):
    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    file_format: Mapped[str] = mapped_column(String(20))
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    skipped_empty: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("project_id", "content_hash", name="uq_documents_project_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    import_batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("import_batches.id", ondelete="SET NULL"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    text_b: Mapped[str | None] = mapped_column(Text)  # second text of a pair task
    gold_label: Mapped[str | None] = mapped_column(String(200))  # evaluation only, never trained on
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 of text (+ text_b)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LabelClass(Base):
    """One class of a project's label set."""

    __tablename__ = "label_classes"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_label_classes_project_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")  # guideline shown while labelling
    verbalizer_word: Mapped[str] = mapped_column(String(100), default="")  # suggested label word
    position: Mapped[int] = mapped_column(Integer, default=0)

    project: Mapped[Project] = relationship(back_populates="label_classes")


class Label(Base):
    """The current label of a document (at most one per document)."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), unique=True
    )
    label_class_id: Mapped[int] = mapped_column(
        ForeignKey("label_classes.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(20), default=HUMAN)
    held_out: Mapped[bool] = mapped_column(Boolean, default=False)  # evaluation set, not trained on
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # who; users are never deleted
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class LabelEvent(Base):
    """Append-only history of label changes; undo replays it backwards."""

    __tablename__ = "label_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    old_label_class_id: Mapped[int | None] = mapped_column(
        ForeignKey("label_classes.id", ondelete="SET NULL")
    )
    new_label_class_id: Mapped[int | None] = mapped_column(
        ForeignKey("label_classes.id", ondelete="SET NULL")
    )
    old_source: Mapped[str | None] = mapped_column(String(20))
    new_source: Mapped[str | None] = mapped_column(String(20))
    undone: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # who; users are never deleted
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DocumentLease(Base):
    """The document a labelling session is showing, held for a short while so that a
    second annotator of the project is shown another one."""

    __tablename__ = "document_leases"

    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    holder: Mapped[str] = mapped_column(String(64))  # one browser session
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class PromptConfig(Base):
    """A saved prompt design. Immutable: editing saves a new version."""

    __tablename__ = "prompt_configs"
    __table_args__ = (UniqueConstraint("project_id", "version", name="uq_prompt_configs_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(Text)
    verbalizer: Mapped[dict] = mapped_column(JSON)  # label name -> label word
    model: Mapped[str] = mapped_column(String(500), default="default")
    mode: Mapped[str] = mapped_column(String(20), default="prompt")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(50))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime)


class Run(Base):
    """A job: `kind` is "train" (LiST training), "predict" (label a corpus/file) or "embed"
    (cache the corpus embeddings that diverse selection clusters)."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_status_created", "status", "created_at"),
        Index("ix_runs_status_queued", "status", "queued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    prompt_config_id: Mapped[int | None] = mapped_column(
        ForeignKey("prompt_configs.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(20), default="train")
    # 1, 2, ... within the project and kind: what people see ("Run #1" is the first training
    # run, whatever background jobs came before); ids stay the key (URLs, files, the API).
    number: Mapped[int | None] = mapped_column(Integer)
    config: Mapped[dict] = mapped_column(JSON, default=dict)  # everything the worker needs
    status: Mapped[str] = mapped_column(String(20), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker_id: Mapped[str | None] = mapped_column(
        ForeignKey("workers.id", ondelete="SET NULL"), index=True
    )
    device: Mapped[str | None] = mapped_column(String(50))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    current_round: Mapped[int | None] = mapped_column(Integer)
    total_rounds: Mapped[int | None] = mapped_column(Integer)
    phase: Mapped[str | None] = mapped_column(String(40))
    step: Mapped[int | None] = mapped_column(Integer)
    total_steps: Mapped[int | None] = mapped_column(Integer)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1 over the whole run
    error: Mapped[str | None] = mapped_column(Text)  # message + traceback of the last failure
    resumed_from_round: Mapped[int | None] = mapped_column(Integer)  # last resume's checkpoint
    not_before: Mapped[datetime | None] = mapped_column(DateTime)  # retry back-off: not claimed before
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # who; users are never deleted
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    queued_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)  # claim order (FIFO)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    @property
    def title(self) -> str:
        """"Run #3" (training), "Prediction #2", "Embedding #1": the run as people see it."""
        noun = RUN_NOUNS.get(self.kind, "Run")
        return f"{noun} #{self.number if self.number is not None else self.id}"


RUN_NOUNS = {"train": "Run", "predict": "Prediction", "embed": "Embedding"}


class RunStep(Base):
    """Training losses, sampled (the worker writes at most about once a second)."""

    __tablename__ = "run_steps"
    __table_args__ = (Index("ix_run_steps_run_round", "run_id", "round"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(40))
    step: Mapped[int] = mapped_column(Integer)
    global_step: Mapped[int] = mapped_column(Integer)
    loss: Mapped[float] = mapped_column(Float)
    lr: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RoundMetric(Base):
    """Evaluation after the teacher (round 0) and after each self-training round."""

    __tablename__ = "round_metrics"
    __table_args__ = (UniqueConstraint("run_id", "round", name="uq_round_metrics_run_round"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float | None] = mapped_column(Float)
    macro_f1: Mapped[float | None] = mapped_column(Float)
    pseudo_label_accuracy: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict] = mapped_column(JSON, default=dict)  # per-class P/R/F1, confusion, ...
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PseudoLabel(Base):
    """A teacher's soft label for one unlabelled document in one round, with its meta weight."""

    __tablename__ = "pseudo_labels"
    __table_args__ = (
        UniqueConstraint("run_id", "round", "document_id", name="uq_pseudo_labels_run_round_doc"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    probs: Mapped[list] = mapped_column(JSON)  # teacher probabilities, in label order
    label: Mapped[str] = mapped_column(String(200))  # argmax of probs
    confidence: Mapped[float] = mapped_column(Float)
    meta_weight: Mapped[float | None] = mapped_column(Float)  # None: never in a meta batch


# One artifact per (run, kind, round); a NULL round (the model, predictions) counts as one value.
ARTIFACT_KEY_ROUND = func.coalesce(literal_column("round"), literal_column("-1"))


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (
        Index("ix_artifacts_run_kind_round", "run_id", "kind", "round"),
        Index("uq_artifacts_run_kind_round", "run_id", "kind", ARTIFACT_KEY_ROUND, unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # checkpoint | model | export | predictions
    round: Mapped[int | None] = mapped_column(Integer)
    # Relative to LIST_DATA_DIR, so that any machine finds it under its own data dir (an
    # absolute path: a file outside the data dir). `.path` is where it is on this machine.
    stored_path: Mapped[str] = mapped_column("path", Text)
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)  # 64-bit: artifacts may exceed 2 GiB
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # who; users are never deleted
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


    @property
    def path(self) -> str:
        """The artifact's location on this machine (under this machine's LIST_DATA_DIR)."""
        return str(artifact_location(self.stored_path))

    @path.setter
    def path(self, value) -> None:
        self.stored_path = artifact_key(value)


def artifact_key(path) -> str:
    """How an artifact path is stored: relative to LIST_DATA_DIR when inside it."""
    from pathlib import Path

    from db.settings import get_settings

    path = Path(path)
    data_dir = get_settings().data_dir
    if path.is_absolute() and path.resolve().is_relative_to(data_dir):
        return path.resolve().relative_to(data_dir).as_posix()
    return str(path)


def artifact_location(key: str):
    from db.settings import get_settings

    return get_settings().data_dir / key  # an absolute key stays as it is


class ArtifactBlob(Base):
    """The content of a small artifact (a tar of its file or folder), so that a worker or the
    app on another machine can fetch it from the database (db/artifact_store.py)."""

    __tablename__ = "artifact_blobs"

    artifact_id: Mapped[int] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class DocumentEmbedding(Base):
    """Mean-pooled backbone embeddings, cached for diverse selection (float32 bytes)."""

    __tablename__ = "document_embeddings"
    __table_args__ = (
        UniqueConstraint("document_id", "model", name="uq_document_embeddings_doc_model"),
        Index("ix_document_embeddings_project_model", "project_id", "model"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(500))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
