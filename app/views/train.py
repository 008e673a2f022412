"""Train: pick the prompt, mode, model and preset; see what will run; start = enqueue."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import ui
from app.services import ServiceError, training
from app.services import prompts as prompt_service
from app.services import runs as run_service

PROGRESS_RUN_KEY = "progress_run_id"


@st.cache_data(max_entries=16, show_spinner="Counting the model's parameters…")
def _parameter_counts(model: str, template: str, words: tuple, mode: str, adapter: tuple):
    return training.parameter_counts(model, template, dict(words), mode, dict(adapter))


def _tokenizer(model: str):
    try:
        return ui.tokenizer(model), None
    except ServiceError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - shown to the user as a reason not to start
        return None, f"Could not load the tokenizer of {model!r}: {exc}"


def _knobs(preset: str) -> tuple[dict, int | None]:
    """The custom preset's inputs (starting from "quick")."""
    d = training.preset_defaults("custom")
    st.caption("Custom settings start from the quick preset.")
    c1, c2, c3, c4 = st.columns(4)
    knobs = {
        "rounds": c1.number_input("Rounds", 0, 20, int(d["rounds"]), key="k_rounds",
                                  help=HELP["rounds"]),
        "unlabeled_sample_size": c2.number_input(
            "Unlabelled documents used", 1, 1_000_000, int(d["unlabeled_sample_size"] or 1000),
            key="k_sample", help="One random sample of the pool, pseudo-labelled again in "
                                 "every round (so the rounds can be compared)."),
        "teacher_steps": c3.number_input("Teacher steps", 1, 100_000, int(d["teacher_steps"]),
                                         key="k_teacher"),
        "unlabeled_steps": c4.number_input("Unlabelled steps per round", 1, 100_000,
                                           int(d["unlabeled_steps"]), key="k_usteps"),
        "labeled_steps": c1.number_input("Labelled steps per round", 1, 100_000,
                                         int(d["labeled_steps"]), key="k_lsteps"),
        "teacher_lr": c2.number_input("Teacher learning rate", 1e-7, 1.0, float(d["teacher_lr"]),
                                      format="%.2e", key="k_tlr",
                                      help="Used when the automatic choice below is off."),
        "student_lr": c3.number_input("Student learning rate", 1e-7, 1.0, float(d["student_lr"]),
                                      format="%.2e", key="k_slr",
                                      help="Used when the automatic choice below is off."),
        "seed": c4.number_input("Seed", 0, 2**31 - 1, int(d["seed"]), key="k_seed"),
    }
    bottleneck = c1.number_input("Adapter size (0 = automatic: hidden / 6)", 0, 4096,
                                 int(d["bottleneck"] or 0), key="k_bottleneck")
    knobs["auto_lr"] = c2.checkbox(
        "Choose the learning rate from the labels", value=bool(d["auto_lr"]), key="k_auto_lr",
        help="Tries 1e-4, 3e-4 and 1e-3 by 2-fold cross-validation on your training labels "
             "and uses the best for the teacher and the students (about 6 short teacher runs "
             "more). On the benchmark no single rate suited both data sets (MR wanted 1e-4, "
             "BBC 1e-3). Off: the two learning rates above are used.")
    _switches(knobs, d)
    return knobs, (int(bottleneck) or None)


# What each switch does and what the benchmark found (bench/RESULTS.md, bench/results/NOTES.md).
HELP = {
    "rounds": "Self-training rounds after the teacher: each round the current model "
              "pseudo-labels the unlabelled documents, the labels are refined (the switches "
              "below) and a student learns from those and your labels. Benchmark (packaged "
              "MiniLM, 30 labels, 5 seeds, quick preset): the rounds added +2.8 ± 0.6 points "
              "on BBC news topics (ahead on 5 of 5 splits) and nothing on MR movie-review "
              "sentiment (-0.0 ± 1.1). 0 = teacher only.",
    "kd_warmup": "Each round first distils the teacher's pseudo-labels with equal weights "
                 "(60 % of the unlabelled steps), then re-weights them. Benchmark: removing it "
                 "cost 2.5 points on MR and 0.5 on BBC (development splits); with the older "
                 "MLM head it helped MR (+2.0 ± 0.6) but hurt BBC (-2.8 ± 2.6), where 'no KD "
                 "warm-up' was the best LiST variant. Try it off when there are many classes "
                 "and the teacher is weak.",
    "meta_reweighting": "Weights each pseudo-label by how well its gradient agrees with that "
                        "of your labels, so wrong pseudo-labels count less. A weighted step "
                        "costs about 1.8x a plain one. Benchmark: small, +0.8 ± 0.7 points on "
                        "MR (3 seeds), +0.2 on BBC (2 seeds); nothing measurable with the older "
                        "MLM head. Off: every pseudo-label counts alike.",
    "confidence_threshold": "Drop pseudo-labels whose top probability is below this before "
                            "the student learns from them (0 = keep all). Not measured on the "
                            "benchmark (it ran with all kept); a high threshold with a weak "
                            "teacher can leave a round with nothing to learn from.",
    "adapter_layers": "Adapters (the small trained matrices) only in the top N layers of the "
                      "model; the layers below are computed once per document and cached, so "
                      "every training step pays for N layers. 0 = every layer (slowest). "
                      "Benchmark (MR, development splits): the teacher with the top layer only "
                      "scored as with the top two (70.0 / 69.2 vs 69.8 / 70.3 %) in a third "
                      "of the time.",
    "student_init": "Each round's student starts from its teacher's weights instead of fresh "
                    "adapters (the paper). Benchmark: see 'Rounds' (tested together with the "
                    "four switches after it, not one by one).",
    "neighbour_weight": "Share of each pseudo-label taken from its 10 nearest documents in the "
                        "model's own (untrained) embedding space: a teacher's lone mistake in "
                        "a region where it is otherwise consistent gets outvoted. Benchmark: "
                        "see 'Rounds'. 0 = the teacher's labels as they are.",
    "pseudo_label_temperature": "Below 1 the student learns sharper (more decided) labels "
                                "than the teacher's. Benchmark: see 'Rounds'. 1 = as they are.",
    "balanced_fraction": "Per class the teacher predicts, the student learns only from the most "
                         "confident documents, the same budget for every class (share x "
                         "documents / classes). Benchmark: see 'Rounds'. 0 = learn from all.",
    "token_drop": "Noise on the student's input: this share of each document's words is hidden "
                  "from it, so it must find the label from less than its teacher saw. "
                  "Benchmark: see 'Rounds'. 0 = no noise.",
    "label_init": "Before training, the label words are checked against your labels: if they "
                  "sort your labelled documents no better than chance and the average of each "
                  "class's documents clearly does better (label words that mean the opposite, "
                  "or nothing, to the model), each class starts from that average instead. "
                  "Benchmark: MR with the label words swapped, LiST 58.1 -> 62.1 %, level with "
                  "a linear probe; with good label words nothing changes. Off = always the "
                  "label words.",
    "max_length": "Tokens read per document (0 = automatic: the 95th percentile of your "
                  "documents, capped by the model). Time grows roughly in proportion. Benchmark: on "
                  "BBC articles, 256 tokens instead of 64 took frozen-embedding logistic regression "
                  "from 73.9 % to 90.7 % accuracy.",
}


def _switches(knobs: dict, d: dict) -> None:
    """The engine switches that change results, with what the benchmark found."""
    c1, c2, c3, c4 = st.columns(4)
    knobs["kd_warmup"] = c1.checkbox("KD warm-up", value=bool(d["kd_warmup"]), key="k_kd",
                                     help=HELP["kd_warmup"])
    knobs["meta_reweighting"] = c2.checkbox("Meta re-weighting", value=bool(d["meta_reweighting"]),
                                            key="k_meta", help=HELP["meta_reweighting"])
    knobs["confidence_threshold"] = c3.number_input(
        "Confidence threshold", 0.0, 0.99, float(d["confidence_threshold"]), step=0.05,
        key="k_threshold", help=HELP["confidence_threshold"])
    knobs["max_length"] = c4.number_input("Max length (tokens, 0 = automatic)", 0, 4096,
                                          int(d["max_length"]), key="k_max_length",
                                          help=HELP["max_length"])
    c1, c2, c3, c4 = st.columns(4)
    knobs["adapter_layers"] = c1.number_input(
        "Adapter layers (top N, 0 = every layer)", 0, 100, int(d["adapter_layers"]),
        key="k_adapter_layers", help=HELP["adapter_layers"])
    knobs["student_init"] = "teacher" if c2.checkbox(
        "Student continues from its teacher", value=d["student_init"] == "teacher",
        key="k_student_init", help=HELP["student_init"]) else "fresh"
    knobs["neighbour_weight"] = c3.number_input(
        "Neighbour agreement (0 = off)", 0.0, 1.0, float(d["neighbour_weight"]), step=0.1,
        key="k_neighbours", help=HELP["neighbour_weight"])
    knobs["pseudo_label_temperature"] = c4.number_input(
        "Sharpening temperature (1 = off)", 0.05, 10.0, float(d["pseudo_label_temperature"]),
        step=0.1, key="k_temperature", help=HELP["pseudo_label_temperature"])
    knobs["balanced_fraction"] = c1.number_input(
        "Class-balanced share (0 = keep all)", 0.0, 1.0, float(d["balanced_fraction"]),
        step=0.1, key="k_balanced", help=HELP["balanced_fraction"])
    knobs["token_drop"] = c2.number_input(
        "Token drop (student noise)", 0.0, 0.9, float(d["token_drop"]), step=0.05,
        key="k_token_drop", help=HELP["token_drop"])
    knobs["label_init"] = "auto" if c3.checkbox(
        "Check the label words against the labels", value=d["label_init"] == "auto",
        key="k_label_init", help=HELP["label_init"]) else "words"


KEEP_LABELS = {
    "best_accuracy": "The best round by accuracy",
    "best_macro_f1": "The best round by macro-F1",
    "last": "The last round",
}


def _keep_round() -> str:
    return st.radio(
        "Model to save (used by export and predict)", list(training.KEEP_ROUNDS),
        format_func=KEEP_LABELS.get, key="train_keep_round", horizontal=True,
        help="After the teacher and each round the model is evaluated. With an evaluation set "
             "the run can end on the round that scored best (ties: the later one) instead of "
             "the last, which self-training may have made worse, but only when that round is "
             "better beyond the evaluation's noise: with a few evaluation examples the last "
             "round is kept. Macro-F1 weighs every class alike (better when one class is "
             "rare). Without an evaluation set it is always the last round.")


def _evaluation_section(s, project_id: int, counts) -> str:
    st.subheader("Evaluation set")
    options = {
        "auto": "Automatic: held-out labels and gold-labelled documents set aside",
        "gold": f"Gold labels of the self-training pool ({counts.gold_unlabelled} documents)",
        "held_out": f"Held-out labels only ({counts.held_out_total})",
        "none": "None",
    }
    source = st.radio("Measure accuracy on", list(options), format_func=options.get,
                      key="eval_source", horizontal=True,
                      help="Automatic sets aside a share of the documents that have a gold "
                      f"label ({training.EVAL_RESERVE_SHARE:.0%}, at most "
                      f"{training.EVAL_RESERVE_MAX:,}): the run never sees them, so the "
                      "accuracy is that of new documents. The pool option measures on the "
                      "documents the run self-trains on (never on their labels), which "
                      "flatters the accuracy a little.")
    evaluation = training.resolve_evaluation(counts, source)
    if evaluation.source == "none":
        st.warning(
            "There is no evaluation set: accuracy and macro-F1 cannot be measured for this "
            "run. Hold out some labels below (they are then not trained on), or import gold "
            "labels with the corpus.", icon=":material/warning:")
    else:
        st.info(evaluation.message, icon=":material/fact_check:")
    c1, c2, c3 = st.columns([2, 2, 3])
    per_class = c1.number_input("Labels to hold out per class", 1, 50, 2, key="holdout_n")
    if c2.button("Hold out labels", key="holdout_btn"):
        moved = training.hold_out_labels(s, project_id, per_class=int(per_class))
        if moved:
            st.toast(f"{moved} labels held out for evaluation.")
        else:
            st.toast("No labels could be held out: every class needs more than 2 labels.")
        st.rerun()
    if counts.held_out_total and c3.button("Put held-out labels back into training",
                                           key="release_btn"):
        training.release_held_out(s, project_id)
        st.rerun()
    return source


def main() -> None:
    project = ui.require_project()
    st.title("Train a classifier")
    with ui.session() as s:
        configs = prompt_service.list_prompt_configs(s, project.id)
        if not configs:
            st.info("No prompt yet: design and save one on the Prompt design page first.",
                    icon=":material/text_fields:")
            return
        by_id = {c.id: c for c in configs}
        c1, c2 = st.columns([3, 1])
        config_id = c1.selectbox(
            "Prompt", list(by_id),
            format_func=lambda i: f"v{by_id[i].version}: {by_id[i].template[:80]}",
            key="train_prompt")
        config = by_id[config_id]
        mode = c2.radio("Mode", training.MODES, index=training.MODES.index(config.mode)
                        if config.mode in training.MODES else 0, key="train_mode",
                        help="prompt: classify through the masked-LM head (LiST); classic: "
                        "a classification head on the [CLS] vector (the paper's baseline).")
        st.caption("Template")
        st.code(config.template, language=None)
        st.dataframe(pd.DataFrame({"label": list(config.verbalizer),
                                   "label word": list(config.verbalizer.values())}),
                     hide_index=True)
        model_default = config.model if config.model != "default" else ui.default_model()
        model = st.text_input("Model (a hub name or a local path)", value=model_default,
                              key=f"train_model_{config_id}").strip() or model_default

        preset = st.radio("Preset", training.PRESETS, key="train_preset", horizontal=True,
                          help="quick: the fast settings the benchmark chose. paper: the "
                          "reference settings (RoBERTa-large on a GPU). custom: set the main "
                          "knobs. What each costs on this corpus and machine is shown below.")
        overrides, bottleneck = ({}, None)
        if preset == "custom":
            overrides, bottleneck = _knobs(preset)
        overrides["keep_round"] = _keep_round()
        try:
            list_config = training.build_list_config(preset, overrides, bottleneck)
        except ServiceError as exc:
            ui.error(exc)
            return

        tokenizer, tok_error = _tokenizer(model)
        counts = training.data_counts(s, project.id)
        eval_source = _evaluation_section(s, project.id, counts)
        summary = training.training_summary(s, project.id, config_id, eval_source, tokenizer, mode)
        if tok_error:
            summary.problems.append(tok_error)

        st.subheader("What will run")
        counts = summary.counts
        table = pd.DataFrame({
            "class": counts.classes,
            "training labels": [counts.train_per_class.get(c, 0) for c in counts.classes],
            "held out": [counts.held_out_per_class.get(c, 0) for c in counts.classes],
        })
        st.dataframe(table, hide_index=True)
        params = None
        if not tok_error and not summary.problems:
            try:
                adapter = tuple(sorted((list_config.get("adapter") or {}).items()))
                params = _parameter_counts(model, config.template,
                                           tuple(config.verbalizer.items()), mode, adapter)
            except Exception as exc:  # noqa: BLE001 - the estimate is optional
                st.caption(f"Parameter count unavailable: {ui.md(exc)}")
        device = summary.workers[0].device if summary.workers else None
        measured = training.seconds_per_unit_history(s, model, device)
        length = None
        if params and tokenizer is not None:
            length = training.length_choice(s, project.id, tokenizer, params.model_max_length,
                                            list_config.get("max_length"))
        timed = {**list_config, "max_length": length.max_length} if length else list_config
        estimate = training.estimate_time(timed, counts, summary.evaluation.size,
                                          params.total if params else None, device, measured)
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Training labels", counts.train_total)
        m2.metric("Unlabelled pool", f"{counts.unlabelled - summary.evaluation.reserved:,}",
                  help="Documents without a label that the run self-trains on (the ones set "
                  "aside for evaluation are not among them).")
        m3.metric("Trainable parameters",
                  f"{params.trainable:,}" if params else "-",
                  help=f"of {params.total:,} in total" if params else None)
        m4.metric("Estimated time", estimate.short, help=estimate.text)
        costs = training.preset_estimates(counts, summary.evaluation.size,
                                          params.total if params else None, device, measured,
                                          length.max_length if length else None)
        st.caption("On this corpus and this machine: "
                   + "; ".join(f"{p} preset {e.text}" for p, e in costs.items()) + ".")
        rounds = list_config.get("rounds", 0)
        st.caption(
            f"Teacher: {list_config['teacher_steps']} steps; then {rounds} round(s) of "
            f"{list_config['unlabeled_steps']} unlabelled + {list_config['labeled_steps']} "
            f"labelled steps on up to {list_config.get('unlabeled_sample_size') or 'all'} "
            f"unlabelled documents. Time: {estimate.basis}"
            + (f" (worker device: {device})." if device else " (no worker running: assumed CPU).")
        )
        if params:
            st.caption(f"{params.trainable:,} trainable of {params.total:,} parameters "
                       f"({100 * params.trainable / max(params.total, 1):.1f} %). "
                       + prompt_service.head_explanation(params.head,
                                                         params.mlm_head_pretrained))
        if length:
            how = ("the 95th percentile of your documents' token counts" if length.chosen
                   else "set by the preset")
            st.caption(f"Max length: {length.max_length} tokens ({how}; the model takes up to "
                       f"{length.model_limit}). {length.truncated_share:.0%} of the documents "
                       "are longer and will be cut; a longer max length costs time roughly "
                       "in proportion (the estimate above uses this length).")

        for problem in summary.problems:
            ui.error(problem)
        for warning in summary.warnings:
            # The worker hint is our own text (with `code`); the others may hold label names.
            text = warning if warning.endswith(training.START_WORKER_HINT) else ui.md(warning)
            st.warning(text, icon=":material/warning:")

        wait = run_service.wait_message(s, workers=len(summary.workers))
        if wait and summary.workers:
            st.info(wait, icon=":material/hourglass_empty:")
        if st.button("Start training", type="primary", disabled=not summary.can_start,
                     key="start_training"):
            try:
                run = training.start_training(
                    s, project.id, config_id, mode=mode, model=model, list_config=list_config,
                    eval_source=eval_source, tokenizer=tokenizer, preset=preset,
                )
            except ServiceError as exc:
                ui.error(exc)
            else:
                st.session_state[PROGRESS_RUN_KEY] = run.id
                st.success(f"{run.title} queued. Follow it on the Live progress page.",
                           icon=":material/rocket_launch:")
                wait = run_service.wait_message(s, run, workers=len(summary.workers))
                if wait:
                    st.info(wait, icon=":material/hourglass_empty:")
                if not summary.workers:
                    st.info(training.START_WORKER_HINT)


main()
