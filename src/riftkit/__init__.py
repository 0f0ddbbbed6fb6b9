"""riftkit: robust fine-tuning of pre-trained language models against word substitutions."""

__version__ = "0.1.0"
