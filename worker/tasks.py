"""What a run does, by kind. A task returns "completed" or "stopped" (stopped at a step
boundary: shutdown, cancel request or lost run); the caller turns that into a status."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from db import jobs, queries
from db.artifact_store import keep_copy, materialize
from db.models import Document, Run
from db.progress import add_artifact, record_environment, truncate_after_round, update_progress
from db.settings import get_settings
from worker.context import RunContext
from worker.data import RunConfigError, build_datasets
from worker.files import describe

log = logging.getLogger(__name__)

PREDICT_BATCH = 256
EMBED_MAX_LENGTH = 128  # plenty to cluster documents by topic, and twice as fast as 256 on a CPU


def run_task(ctx: RunContext, run: Run) -> str:
    if run.kind == "train":
        return train(ctx, run)
    if run.kind == "predict":
        return predict(ctx, run)
    if run.kind == "embed":
        return embed(ctx, run)
    raise RunConfigError(f"unknown run kind {run.kind!r}")


def _resolve_model(name: str | None) -> str:
    name = (name or "default").strip() or "default"
    return get_settings().model if name == "default" else name


def train(ctx: RunContext, run: Run) -> str:
    from list_engine import LiSTConfig, LiSTTrainer, PromptClassifier
    from list_engine.environment import environment
    from worker.reporter import DBReporter

    config = dict(run.config or {})
    missing = [k for k in ("template", "verbalizer") if k not in config]
    if missing:
        raise RunConfigError(f"train run config lacks {missing}")
    mode = config.get("mode", "prompt")
    try:
        list_config = LiSTConfig.from_dict(
            {**(config.get("list_config") or {}), "mode": mode, "device": ctx.device}
        )
    except (TypeError, ValueError) as exc:
        raise RunConfigError(f"invalid list_config: {exc}") from exc
    verbalizer = dict(config["verbalizer"])
    run_dir = jobs.run_dir(run.id)
    checkpoints = run_dir / "checkpoints"

    with ctx.session() as s:
        data = build_datasets(s, run.project_id, list(verbalizer), config.get("eval_source", "auto"),
                              config.get("eval_documents"))
        candidates = _checkpoints_on_disk(s, run.id)
        ctx.observe_status(update_progress(s, run.id, ctx.worker_id, phase="loading model",
                                           device=ctx.device))
        record_environment(s, run.id, environment(ctx.device))  # versions + device, per run
    log.info("run %d: %d labelled, %d unlabelled, %d evaluation examples", run.id,
             len(data.labeled), len(data.unlabeled), len(data.eval))

    reporter = DBReporter(ctx)
    try:  # a ValueError here (bad template, verbalizer, data) would fail every retry alike
        classifier = PromptClassifier.create(
            model=_resolve_model(config.get("model")), template=config["template"],
            verbalizer=verbalizer, mode=mode, adapter=list_config.adapter,
            max_length=list_config.max_length, device=ctx.device, bf16=list_config.bf16,
        )
        trainer = LiSTTrainer(classifier, list_config, data.labeled, data.unlabeled,
                              eval=data.eval or None, callbacks=[reporter])
    except ValueError as exc:
        raise RunConfigError(f"{type(exc).__name__}: {exc}") from exc
    # Resume from the newest round checkpoint the engine accepts; an older round when the
    # newest is damaged (cut short by a full disk, files deleted); from scratch when none is
    # usable (or they were made on other data: documents were labelled since).
    for checkpoint in [*candidates, None]:
        resume_from = None
        with ctx.session() as s:
            if checkpoint is not None:
                # Here, or fetched from the database (written by a worker on another machine).
                resume_from = materialize(s, checkpoint)
                if resume_from is None:
                    log.warning("run %d: the round-%d checkpoint is not here nor in the database",
                                run.id, checkpoint.round)
                    continue
                log.info("run %d: resuming from the round-%d checkpoint", run.id, checkpoint.round)
                truncate_after_round(s, run.id, checkpoint.round)
            else:
                truncate_after_round(s, run.id, -1, resumed=False)
        if checkpoint is None and candidates:
            log.warning("run %d: no round checkpoint can be resumed; starting over", run.id)
            shutil.rmtree(checkpoints, ignore_errors=True)
        try:
            result = trainer.train(checkpoint_dir=checkpoints,
                                   resume_from=str(resume_from) if resume_from else None)
            break
        except (ValueError, OSError) as exc:
            if checkpoint is None or reporter.started:
                raise
            log.warning("run %d: cannot resume from %s (%s); trying an older round", run.id,
                        checkpoint.path, exc)
    if result.status != "completed":
        return "stopped"

    # The classifier holds the round that scored best on the evaluation set (the last one
    # when there is none); its metrics go with the model, saying which round it is.
    final = next((dict(m, selected_round=m["round"]) for m in result.metrics
                  if m["round"] == result.selected_round), None)
    if result.selected_round is not None and result.metrics and \
            result.selected_round != result.metrics[-1]["round"]:
        log.info("run %d: keeping round %d, which scored best on the evaluation set",
                 run.id, result.selected_round)
    if data.eval and result.selected_round is not None:
        _record_eval_predictions(ctx, run.id, result.selected_round, result.classifier, data.eval,
                                 list_config.eval_batch_size)
    model_dir = run_dir / "model"
    result.classifier.save_pretrained(model_dir, metrics=final)
    sha, size = describe(model_dir)
    with ctx.session() as s:
        keep_copy(s, add_artifact(s, run.id, "model", str(model_dir), sha256=sha, bytes=size))
    log.info("run %d: model saved to %s", run.id, model_dir)
    return "completed"


def _checkpoints_on_disk(session, run_id: int) -> list:
    """The run's round checkpoints whose folders exist, newest first. Rows whose folder is
    gone (a deleted run directory) are dropped, so nothing points at missing files."""
    from db.progress import forget_missing_artifacts

    gone = forget_missing_artifacts(session, run_id)
    if gone:
        log.warning("run %d: %d artifact(s) were missing on disk: %s", run_id, len(gone),
                    ", ".join(gone))
    rows = queries.run_artifacts(session, run_id, kind="checkpoint")
    return sorted(rows, key=lambda a: a.round if a.round is not None else -1, reverse=True)


def _record_eval_predictions(ctx: RunContext, run_id: int, round: int, classifier, examples,
                             batch_size: int) -> None:
    """The kept round's probabilities on each evaluation example (one more pass over the
    evaluation set), for the app's reliability diagram and intervals."""
    from db.progress import record_eval_predictions

    probs = classifier.predict_proba(examples, batch_size)
    gold = [classifier.labels.index(ex.label) for ex in examples]
    with ctx.session() as s:
        record_eval_predictions(s, run_id, round, gold, probs.tolist())


def _predict_inputs(ctx: RunContext, run: Run, config: dict):
    """(rows for the CSV, examples to classify) of a predict run."""
    import pandas as pd

    from list_engine import Example
    from list_engine.reading import ReadError, read_table

    source = config.get("input", "corpus")
    if source == "corpus":
        with ctx.session() as s:
            docs = s.query(Document).filter(Document.project_id == run.project_id) \
                .order_by(Document.id).all()
        frame = pd.DataFrame({"document_id": [d.id for d in docs], "text": [d.text for d in docs]})
        examples = [Example(text=d.text, text_b=d.text_b, id=d.id) for d in docs]
        return frame, examples
    data_dir = get_settings().data_dir.resolve()
    path = Path(source).expanduser().resolve()
    if not path.is_relative_to(data_dir):
        raise RunConfigError(f"predict input {path} is outside the data directory {data_dir}")
    if not path.is_file():
        raise RunConfigError(f"predict input {path} does not exist")
    column = config.get("text_column", "text")
    try:  # the same reader as every upload: no field-size limit, clear errors
        table = read_table(path)
    except ReadError as exc:
        raise RunConfigError(f"cannot read predict input {path.name}: {exc}") from exc
    if column not in table.columns:
        raise RunConfigError(f"{path.name} has no column {column!r} (columns: {list(table.columns)})")
    text_b = table["text_b"].tolist() if "text_b" in table.columns and column != "text_b" else None
    texts = table[column].tolist()
    examples = [Example(text=t, text_b=text_b[i] if text_b else None, id=i)
                for i, t in enumerate(texts)]
    return pd.DataFrame({"text": texts}), examples


def predict(ctx: RunContext, run: Run) -> str:
    import numpy as np

    from list_engine import PromptClassifier

    config = dict(run.config or {})
    source_run_id = config.get("source_run_id")
    with ctx.session() as s:
        artifact = queries.model_artifact(s, source_run_id) if source_run_id else None
        model_dir = materialize(s, artifact) if artifact is not None else None  # here or from the db
    if model_dir is None or not model_dir.is_dir():
        raise RunConfigError(f"run {source_run_id} has no saved model to predict with")
    classifier = PromptClassifier.from_pretrained(str(model_dir), device=ctx.device)
    frame, examples = _predict_inputs(ctx, run, config)
    shard = config.get("shard")  # one slice of a sharded predict run (worker/shards.py)
    if shard:
        from worker.shards import shard_slice

        part = shard_slice(len(examples), shard)
        frame, examples = frame.iloc[part].reset_index(drop=True), examples[part]
    total = len(examples)
    with ctx.session() as s:
        update_progress(s, run.id, ctx.worker_id, phase="predicting", step=0, total_steps=total,
                        progress=0.0, device=ctx.device)
    parts = []
    for start in range(0, total, PREDICT_BATCH):
        if ctx.should_stop():
            return "stopped"
        parts.append(classifier.predict_proba(examples[start:start + PREDICT_BATCH]))
        done = min(start + PREDICT_BATCH, total)
        with ctx.session() as s:
            ctx.observe_status(update_progress(s, run.id, ctx.worker_id, step=done,
                                               progress=done / max(total, 1)))
    labels = list(classifier.labels)
    probs = np.concatenate(parts) if parts else np.zeros((0, len(labels)))
    from list_engine.predictions import prediction_columns

    for column, values in prediction_columns(labels, probs).items():  # the CLI's columns too
        frame[column] = values
    out = jobs.run_dir(run.id) / "predictions.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    from list_engine.csv_safety import spreadsheet_safe

    frame = frame.map(spreadsheet_safe)  # no formula runs when the CSV opens in a spreadsheet
    frame.to_csv(out, index=False)
    sha, size = describe(out)
    kind = "predictions-part" if shard else "predictions"
    with ctx.session() as s:
        keep_copy(s, add_artifact(s, run.id, kind, str(out), sha256=sha, bytes=size))
    log.info("run %d: %d predictions written to %s", run.id, total, out)
    if shard:
        from worker.shards import merge_if_complete

        merge_if_complete(ctx, shard)
    return "completed"


def embed(ctx: RunContext, run: Run) -> str:
    """Cache the mean-pooled embeddings that diverse selection clusters, for the documents
    that have none yet (a resumed or retried run continues where the last one stopped)."""
    from db.embeddings import compute_embeddings, missing_embeddings
    from list_engine import mean_pooled_embeddings

    model = (run.config or {}).get("model")
    if not model:
        raise RunConfigError("embed run config lacks 'model'")
    with ctx.session() as s:
        total = missing_embeddings(s, run.project_id, model)
        ctx.observe_status(update_progress(s, run.id, ctx.worker_id, phase="embedding", step=0,
                                           total_steps=total, progress=0.0, device=ctx.device))

    def embed_texts(texts: list[str]):
        return mean_pooled_embeddings(texts, model=model, device=ctx.device,
                                      max_length=EMBED_MAX_LENGTH)

    def report(done: int, todo: int) -> None:
        with ctx.session() as s:
            ctx.observe_status(update_progress(s, run.id, ctx.worker_id, step=done,
                                               total_steps=todo, progress=done / max(todo, 1)))

    with ctx.session() as s:
        try:
            done = compute_embeddings(s, run.project_id, model, embed=embed_texts,
                                      progress=report, should_stop=ctx.should_stop)
        except (OSError, ValueError) as exc:  # a model that cannot load fails every retry alike
            raise RunConfigError(f"cannot embed with {model!r}: {type(exc).__name__}: {exc}") from exc
        left = missing_embeddings(s, run.project_id, model)
    log.info("run %d: %d documents embedded with %s, %d left", run.id, done, model, left)
    return "stopped" if left and ctx.should_stop() else "completed"
