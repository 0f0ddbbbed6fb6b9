"""Models: encoder loading (Hub name, folder, embedded MiniLM, first k layers), classifier, save/load."""

from .classifier import Classifier, ClassifierSpec, build_classifier
from .encoder import EMBEDDED, EncoderNotFoundError, embedded_model_path, load_encoder, load_tokenizer, random_encoder
from .io import load_classifier, save_classifier, weights_digest

__all__ = [
    "Classifier", "ClassifierSpec", "EMBEDDED", "EncoderNotFoundError", "build_classifier", "embedded_model_path",
    "load_classifier", "load_encoder", "load_tokenizer", "random_encoder", "save_classifier", "weights_digest",
]
