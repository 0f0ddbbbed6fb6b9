"""Let any TextAttack recipe attack a riftkit model (TextAttack is an optional dependency).

TextAttack hands the wrapper raw strings (pairs as tuples); they go through
riftkit's own pre-tokenisation, so the model sees exactly the words it was
trained on. TextAttack pins old dependencies (transformers < 5): install it in
its own environment (``benchmarks/textattack_env.py`` makes one).
"""

from __future__ import annotations

from ..data.pretokenize import words


def textattack_model_wrapper(model, batch_size: int = 32):
    """A ``textattack.models.wrappers.ModelWrapper`` around a riftkit Classifier; returns class probabilities."""
    try:
        from textattack.models.wrappers import ModelWrapper
    except ImportError:
        raise ImportError(
            "textattack is not installed: it needs its own environment (it caps transformers below 5); "
            "python benchmarks/textattack_env.py creates one at .venv-textattack"
        ) from None

    class RiftkitModelWrapper(ModelWrapper):
        def __init__(self, model, batch_size: int):
            self.model = model
            self.batch_size = batch_size

        def __call__(self, text_input_list):
            segments = []
            for item in text_input_list:
                texts = item if isinstance(item, (tuple, list)) else (item,)
                segments.append(tuple(tuple(words(t)) for t in texts))
            return self.model.predict_proba(segments, batch_size=self.batch_size).numpy()

    return RiftkitModelWrapper(model, batch_size)
