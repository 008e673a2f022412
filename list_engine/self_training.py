"""Placeholder: replaced by the LiST trainer."""


class LiSTTrainer:  # pragma: no cover
    def __init__(self, classifier, config, labeled, unlabeled, eval=None, callbacks=()):
        raise NotImplementedError
