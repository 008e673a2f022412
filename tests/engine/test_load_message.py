"""Loading a trained model says so (issue 16): no "the MLM head starts untrained" note about
the base checkpoint, whose head the trained weights replace."""

from __future__ import annotations

import logging

from list_engine import PromptClassifier, modeling


def test_loading_a_trained_model_does_not_call_its_head_untrained(headless_bert, tmp_path,
                                                                  caplog):
    modeling._LOGGED_HEAD_CHOICE.clear()
    with caplog.at_level(logging.INFO, logger="list_engine.modeling"):
        clf = PromptClassifier.create(model=str(headless_bert), template="{text} It was {mask}.",
                                      verbalizer={"a": "great", "b": "terrible"}, head="mlm",
                                      device="cpu")
    assert "starts untrained" in caplog.text  # true when the head is created
    clf.save_pretrained(tmp_path / "model")
    modeling._LOGGED_HEAD_CHOICE.clear()  # as in a fresh process (the app, the CLI)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="list_engine.modeling"):
        PromptClassifier.from_pretrained(tmp_path / "model", device="cpu")
    assert "starts untrained" not in caplog.text
    assert "mlm head with its trained weights" in caplog.text
