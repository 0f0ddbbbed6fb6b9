"""The TextAttack half of attack_speed.py; runs INSIDE the TextAttack environment (.venv-textattack).

Reads a job JSON (victim folder, examples, substitution file, which attacks),
attacks every example with TextAttack's own search methods over a
dictionary-based word swap fed the same substitution set, and writes one JSON
with per-example outcomes, query counts and the wall time of each attack.
The victim is the riftkit model through riftkit's TextAttack wrapper.
"""

from __future__ import annotations

import json
import sys
import time

import torch


def build_attacks(wrapper, table: dict, names: list[str]):
    from textattack import Attack
    from textattack.constraints.pre_transformation import RepeatModification
    from textattack.goal_functions import UntargetedClassification
    from textattack.search_methods import AlzantotGeneticAlgorithm, GreedyWordSwapWIR
    from textattack.transformations import WordSwap

    class DictionaryWordSwap(WordSwap):
        """Substitutes from riftkit's substitution set (words are lowercase there)."""

        def __init__(self, neighbours: dict):
            super().__init__()
            self.neighbours = neighbours

        def _get_replacement_words(self, word):
            return list(self.neighbours.get(word.lower(), ()))

    class SignCorrectedAlzantot(AlzantotGeneticAlgorithm):
        """Parents drawn with probability increasing in the score (textattack 0.3.11 uses exp(-score / temp)).

        A negative temperature turns exp(-score / temp) into exp(score / |temp|): the original algorithm.
        """

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.temp = -abs(self.temp)

    def attack(search):
        # RepeatModification: a position changes at most once, so every change is a substitute of the
        # ORIGINAL word, the threat model of riftkit (no substitutes of substitutes).
        return Attack(UntargetedClassification(wrapper), [RepeatModification()], DictionaryWordSwap(table), search)

    genetic = dict(pop_size=60, max_iters=40, post_crossover_check=False)
    makers = {
        "textattack-pwws": lambda: attack(GreedyWordSwapWIR(wir_method="weighted-saliency")),
        "textattack-genetic": lambda: attack(AlzantotGeneticAlgorithm(**genetic)),
        "textattack-genetic-sign-fixed": lambda: attack(SignCorrectedAlzantot(**genetic)),
    }
    return {name: makers[name]() for name in names}


class CountingWrapper:
    """Passes TextAttack's model calls through, counting calls, texts and the seconds spent in the model."""

    def __init__(self, wrapper):
        self.wrapper = wrapper
        self.model = wrapper.model
        self.reset()

    def reset(self) -> None:
        self.calls, self.texts, self.seconds = 0, 0, 0.0

    def __call__(self, text_input_list):
        start = time.perf_counter()
        out = self.wrapper(text_input_list)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        self.texts += len(text_input_list)
        return out

    def __getattr__(self, name):  # everything else TextAttack asks of a ModelWrapper
        return getattr(self.wrapper, name)


def main(job_path: str, out_path: str) -> None:
    import numpy as np
    import textattack
    from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult

    from riftkit.attacks.textattack_wrapper import textattack_model_wrapper
    from riftkit.models import load_classifier

    job = json.loads(open(job_path, encoding="utf-8").read())
    torch.set_num_threads(job["threads"])
    model = load_classifier(job["victim"]).to(job.get("device", "cpu"))
    wrapper = CountingWrapper(textattack_model_wrapper(model, batch_size=job["batch_size"]))
    table = json.loads(open(job["substitutions"], encoding="utf-8").read())
    report = {"textattack_version": getattr(textattack, "__version__", "0.3.11"), "attacks": {}}
    for name, attack in build_attacks(wrapper, table, job["attacks"]).items():
        np.random.seed(job["seed"])  # TextAttack's genetic search draws from numpy's global generator
        rows, start = [], time.perf_counter()
        wrapper.reset()
        report["attacks"][name] = run = {"wall_s": 0.0, "examples": rows, "complete": False}
        for example in job["examples"]:
            result = attack.attack(example["text"], example["label"])
            outcome = {SuccessfulAttackResult: "succeeded", FailedAttackResult: "failed", SkippedAttackResult: "skipped"}.get(type(result), type(result).__name__)
            original = result.original_result.attacked_text.words
            perturbed = result.perturbed_result.attacked_text.words
            rows.append({"uid": example["uid"], "outcome": outcome, "queries": int(result.perturbed_result.num_queries),
                         "changed": sum(a != b for a, b in zip(original, perturbed)) if outcome == "succeeded" else 0,
                         "words": len(original), "adversarial": result.perturbed_result.attacked_text.text})
            run.update(wall_s=time.perf_counter() - start, model_texts=wrapper.texts, model_calls=wrapper.calls, model_s=wrapper.seconds)
            with open(out_path, "w", encoding="utf-8") as handle:  # after every example: a timeout keeps what is done
                json.dump(report, handle)
        report["attacks"][name]["complete"] = True
        with open(out_path, "w", encoding="utf-8") as handle:
            json.dump(report, handle)
        print(f"{name}: {len(rows)} examples in {report['attacks'][name]['wall_s']:.1f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
