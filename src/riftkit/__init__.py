"""riftkit: robust fine-tuning of pre-trained language models against word substitutions.

The Python API (riftkit/api.py) is reached from here, imported on first use so that ``import riftkit`` stays
light: ``riftkit.train``, ``riftkit.load``, ``riftkit.evaluate``, ``riftkit.attack``, ``riftkit.predict``,
``riftkit.export`` and ``riftkit.load_config``.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "attack", "evaluate", "export", "load", "load_config", "predict", "train"]


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'riftkit' has no attribute {name!r}")
