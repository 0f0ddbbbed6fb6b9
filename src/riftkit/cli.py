"""The ``riftkit`` command: train | evaluate | predict | attack | export | sweep | report | demo."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from . import __version__
from .config import DATA_DIR_ENV, ConfigError, load_config


ALLOW_OVERLAP_HELP = ("evaluate on 'test' even if some of its examples trained or selected the model (refused by default; "
                      "the summary then says so)")


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help=f"folder with the local data sets (default: ${DATA_DIR_ENV}, then the config's data.data_dir, then the Hub)")


def _print_table(rows: list[tuple[str, str]], title: str) -> None:
    width = max(len(k) for k, _ in rows)
    print(f"\n{title}")
    print("-" * (width + 24))
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print("-" * (width + 24))


def _report(result, splits) -> None:
    rows = [("data", splits.summary())]
    rows += [(k, v) for k, v in splits.provenance.items() if k in ("dev", "test", "note")]
    rows += [
        ("best dev accuracy", f"{result.best_dev['accuracy']:.4f} (epoch {result.best_dev['epoch']:g}, step {result.best_dev['step']})"),
        ("dev margin (median)", f"{result.best_dev['margin_median']:+.3f} (p(true) - max p(other); near 0: nearly uniform outputs)"),
    ]
    best = result.best_dev
    if "dev_robust_ascc" in best:
        # Robust accuracy comes from a seeded subset of dev: show the clean accuracy on the same examples beside it.
        chosen = " (selected by it)" if best.get("selected_by") == "dev_robust_ascc" else ""
        rows.append(("best dev robust (ASCC)", f"{best['dev_robust_ascc']:.4f} on {best['dev_robust_n']} dev examples, "
                     f"clean accuracy on them {best['dev_robust_subset_accuracy']:.4f}{chosen}"))
    rows += [
        ("test accuracy", f"{result.test['accuracy']:.4f} on {result.test['n']} examples" if result.test else "not evaluated"),
    ]
    if result.test and "robust_ascc" in result.test:
        rows.append(("test robust (ASCC)", f"{result.test['robust_ascc']:.4f} on {result.test['robust_n']} examples, "
                     f"clean accuracy on them {result.test['robust_subset_accuracy']:.4f}"))
    rows += [
        ("wall time", f"{result.wall_time_s:.0f} s"),
        ("best model", str(result.output_dir / "best")),
        ("metrics log", str(result.output_dir / "metrics.jsonl")),
    ]
    _print_table(rows, "riftkit: result")


def _train_and_report(args: argparse.Namespace, config_path: str | None, base=None, banner: str = "riftkit train") -> int:
    from .data import load_splits
    from .training import train

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    config = load_config(config_path, overrides, base=base)
    splits = load_splits(config.data, args.data_dir)
    print(f"{banner}: {config.name}: {splits.summary()}", file=sys.stderr)
    result = train(config, splits, data_dir=args.data_dir, resume=getattr(args, "resume", False))
    if result.best_dev:  # empty on the other processes of a multi-process run: the main one reports
        _report(result, splits)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    return _train_and_report(args, args.config)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(list(args.overrides), args.output_dir, args.data_dir, progress=not args.quiet, test_examples=args.test_examples)


def _model_and_data(args: argparse.Namespace, data_values: dict, source: str):
    """The model ``--model`` names and the data it is evaluated on: (model, DataConfig, splits, data record or None)
    (riftkit.api.model_and_data: a riftkit model brings its data record, a Hugging Face classifier needs --dataset)."""
    from .api import model_and_data

    model, data_config, splits, record, _ = model_and_data(args.model, args.dataset, data_values, args.data_dir, source)
    return model, data_config, splits, record


def check_overrides_read(overrides: list[str], sections: tuple[str, ...]) -> None:
    """Raise ConfigError for an override outside the sections the command reads (it would be dropped silently)."""
    for override in overrides:
        key = override.split("=", 1)[0].strip()
        if key.split(".", 1)[0] not in sections:
            raise ConfigError(f"the override {key} is not read by this command; it reads only "
                              + ", ".join(f"{section}.*" for section in sections))


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .api import evaluate
    from .config import apply_overrides, read_yaml_mapping

    check_overrides_read(list(args.overrides), ("data",))
    values = dict(read_yaml_mapping(args.config).get("data") or {}) if args.config else {}
    values = apply_overrides({"data": values}, list(args.overrides)).get("data") or {}
    result = evaluate(args.model, args.dataset, args.split, args.n, args.seed, data=values, data_dir=args.data_dir,
                      allow_overlap=args.allow_overlap, batch_size=args.batch_size, source=args.config or "command line")
    print(json.dumps(result))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .api import predictions
    from .data import words
    from .models.hf_classifier import HFClassifier
    from .models.io import load_model

    model = load_model(args.model)
    if args.pair and isinstance(model, HFClassifier):  # a foreign classifier does not say whether it reads pairs
        model = model.reading("pair")
    pair = model.spec.task_kind == "pair"
    source = sys.stdin if args.input in (None, "-") else open(args.input, encoding="utf-8")
    output = sys.stdout if args.output in (None, "-") else open(args.output, "w", encoding="utf-8")
    name = "<stdin>" if source is sys.stdin else args.input
    try:
        lines = [(number, line.rstrip("\n")) for number, line in enumerate(source, start=1) if line.strip()]
        segments, texts = [], []
        for number, line in lines:
            if line.lstrip().startswith("{"):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ConfigError(f"{name}, line {number}: malformed JSON ({err.msg})") from None
                keys = ("premise", "hypothesis") if pair else ("text",)
                missing = [k for k in keys if not isinstance(record.get(k), str)]
                if missing:
                    raise ConfigError(f"{name}, line {number}, field {missing[0]!r}: missing or not a string")
                parts = [record[k] for k in keys]
            elif pair:
                parts = line.split("\t")
                if len(parts) != 2:
                    raise ConfigError(f"{name}, line {number}: a pair model needs 'premise<TAB>hypothesis' per line (or JSON with premise/hypothesis)")
            else:
                parts = [line]
            tokens = tuple(tuple(words(p)) for p in parts)
            if any(not t for t in tokens):
                raise ConfigError(f"{name}, line {number}: empty text")
            segments.append(tokens)
            texts.append(parts)
        for parts, predicted in zip(texts, predictions(model, segments, args.batch_size)):
            fields = dict(zip(("premise", "hypothesis"), parts)) if pair else {"text": parts[0]}
            record = {**fields, "label": predicted["label"], "probs": {k: round(v, 6) for k, v in predicted["probs"].items()}}
            output.write(json.dumps(record) + "\n")
    finally:
        if source is not sys.stdin:
            source.close()
        if output is not sys.stdout:
            output.close()
    return 0


def cmd_attack(args: argparse.Namespace) -> int:
    from .attacks.runner import run_attack
    from .reports.tables import format_table
    from .config import AttackConfig, DataConfig, apply_overrides, from_dict, read_yaml_mapping
    check_overrides_read(list(args.overrides), ("attack", "data"))
    values: dict = {}
    if args.config:
        values = {k: v for k, v in read_yaml_mapping(args.config).items() if k in ("attack", "data")}
    values = apply_overrides(values, list(args.overrides))
    if args.allow_overlap:
        values.setdefault("attack", {})["allow_overlap"] = True
    for flag in ("attack", "n", "seed", "split", "output_dir"):
        if getattr(args, flag) is not None:
            values.setdefault("attack", {})[flag] = getattr(args, flag)
    source = args.config or "command line"
    try:
        config = from_dict(AttackConfig, values.get("attack") or {}, "attack")
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    if config.num_threads:
        import torch

        torch.set_num_threads(config.num_threads)
    model, data_config, splits, record = _model_and_data(args, dict(values.get("data") or {}), source)
    shard, processes = _shard(args.shard)
    if processes is not None and processes.device.type == "cuda":
        model = model.to(processes.device)

    def attack(shard_of):
        return run_attack(model, splits, config, args.model, data_dir=args.data_dir or data_config.data_dir, progress=not args.quiet,
                          data_config=data_config, data_record=record, shard=shard_of)

    try:
        summary = attack(shard)
        if processes is not None:  # launched as several processes: each took a shard; the main one merges
            processes.wait_for_everyone()
            if not processes.is_main_process:
                return 0
            summary = attack(None)
        elif shard is not None:
            print(json.dumps({k: v for k, v in summary.items()}))
            return 0
    except ValueError as err:  # damaged result logs, bad substitution files: named in the message, reported not raised
        raise err if isinstance(err, ConfigError) else ConfigError(str(err)) from None
    print(format_table(summary, f"riftkit attack: {config.attack} on {summary['n']} {summary['task']} {config.split} examples"))
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import load_sweep
    from .sweep.collect import collect
    from .sweep.runner import Sweep

    spec = load_sweep(args.config, list(args.overrides))
    sweep = Sweep(spec, data_dir=args.data_dir, progress=not args.quiet)
    if args.list:
        todo, waiting = sweep.unfinished()
        extra = "".join(f" {shlex.quote(o)}" for o in args.overrides)
        data_dir = f" --data-dir {shlex.quote(args.data_dir)}" if args.data_dir else ""
        for run, _final in todo:
            print(f"riftkit sweep {shlex.quote(args.config)} --run {run.run_id}{data_dir}{extra}")
        if waiting:
            print(f"# the runs of {', '.join(waiting)} are listed once their tuning runs (above) have finished: run --list again then")
        return 0
    if args.run:
        run, final = sweep.find(args.run)
        sweep.run(run, final)
    elif not args.collect:
        sweep.run_all()
    table = collect(sweep)
    out = spec.results_dir or spec.output_dir
    print(f"riftkit sweep: {len(table['rows'])} rows -> {out}/table.md, table.csv, table.json", file=sys.stderr)
    print((Path(out) / "table.md").read_text())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .models.export import export_model, push_to_hub

    out = export_model(args.model, args.out, [Path(p) for p in args.attack_summary] or None, repo=args.push_to_hub)
    print(f"riftkit export: {out} (load it with transformers.pipeline(\"text-classification\", model=\"{out}\", "
          "trust_remote_code=True); the model card is README.md)")
    if args.push_to_hub:
        print(f"riftkit export: pushed to {push_to_hub(out, args.push_to_hub, private=args.private)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .reports.build import write

    path = write(args.folder, args.output, args.baseline)
    print(f"riftkit report: {path}")
    return 0


def _shard(text: str | None):
    """(shard, processes): ``--shard I/N`` as (I, N); under ``accelerate launch`` (or torchrun) with several
    processes, this process's shard and Accelerate's PartialState (to wait for the others); else (None, None)."""
    if text:
        try:
            index, count = (int(x) for x in text.split("/"))
        except ValueError:
            raise ConfigError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
        return (index, count), None
    from .training.loop import distributed_processes

    state = distributed_processes()
    return ((state.process_index, state.num_processes), state) if state is not None else (None, None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="riftkit", description="Robust fine-tuning and robustness evaluation of pre-trained language models.")
    parser.add_argument("--version", action="version", version=f"riftkit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="fine-tune a model from a YAML config", description="Fine-tune from a YAML config; any field can be overridden as key=value (e.g. train.epochs=3 data.max_train=2000).")
    p.add_argument("config", help="experiment YAML (see configs/)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, values parsed as YAML")
    p.add_argument("--output-dir", help="where the run is written (overrides output_dir)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoint in output_dir (bit-identical to an uninterrupted run); "
                        "refused if the configuration changed; without a checkpoint, start from scratch")
    _add_data_dir(p)
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("evaluate", help="accuracy of a saved model on a split")
    p.add_argument("--model", required=True, help="a riftkit model folder (e.g. runs/demo/best), an exported folder, a Hugging Face classifier folder or a Hub name")
    p.add_argument("--dataset", help="data set name or path (default: the data that trained the model, recorded in its folder)")
    p.add_argument("--split", default="test", choices=["train", "dev", "test"])
    p.add_argument("--config", help="take the data section from this experiment YAML")
    p.add_argument("--n", type=int, help="evaluate on a seeded sample of N examples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("overrides", nargs="*", help="data.key=value overrides")
    p.add_argument("--allow-overlap", action="store_true", help=ALLOW_OVERLAP_HELP)
    _add_data_dir(p)
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser("predict", help="labels and probabilities for texts (one per line; pairs as premise<TAB>hypothesis; or JSON lines)")
    p.add_argument("--model", required=True)
    p.add_argument("--input", help="input file (default: stdin)")
    p.add_argument("--output", help="output JSON lines (default: stdout)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--pair", action="store_true", help="a Hugging Face classifier reads sentence pairs (riftkit models know it themselves)")
    p.set_defaults(func=cmd_predict)

    p = commands.add_parser("attack", help="robustness of a saved model under a word-substitution attack (genetic, pwws, ascc)",
                            description="Attack a seeded sample of a split; per-example JSONL is written as it goes, and a rerun resumes. "
                            "Any field of the attack config can be set in a YAML file (--config, section 'attack:') or as attack.key=value.")
    p.add_argument("--model", required=True, help="a riftkit model folder (e.g. runs/demo/best), an exported folder, a Hugging Face classifier folder or a Hub name")
    p.add_argument("--attack", help="genetic | pwws | ascc (default genetic)")
    p.add_argument("--n", type=int, help="attack a seeded sample of N examples (default 1000)")
    p.add_argument("--seed", type=int)
    p.add_argument("--split", choices=["train", "dev", "test"])
    p.add_argument("--dataset", help="data set name or path (default: the data that trained the model, recorded in its folder)")
    p.add_argument("--config", help="YAML with an 'attack:' section (and optionally 'data:')")
    p.add_argument("--output-dir", dest="output_dir", help="the attack folder (default: next to the model)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--allow-overlap", action="store_true", help=ALLOW_OVERLAP_HELP)
    p.add_argument("--shard", help="I/N: attack only shard I of N of the sample (for N processes or machines on one folder); "
                   "a later run without --shard merges the shards and writes the summary. Under `accelerate launch` "
                   "the processes shard and merge by themselves")
    p.add_argument("overrides", nargs="*", help="attack.key=value or data.key=value overrides")
    _add_data_dir(p)
    p.set_defaults(func=cmd_attack)

    p = commands.add_parser("sweep", help="a resumable multi-seed study: train, tune, attack, and tabulate with confidence intervals",
                            description="Run the unfinished runs of a sweep YAML (methods x seeds x values; see configs/study/), "
                            "then collect the table (mean and 95%% interval over seeds, paired differences against the baseline) "
                            "and the figures. Killed at any point, it resumes. --list prints one command per unfinished run, for "
                            "a scheduler (SLURM job arrays, Ray) to run anywhere; a plain `riftkit sweep CONFIG --collect` then "
                            "tabulates whatever has finished.")
    p.add_argument("config", help="sweep YAML")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides of the sweep file (e.g. seeds=[0])")
    p.add_argument("--list", action="store_true", help="print one command per unfinished run and exit")
    p.add_argument("--run", help="run (train and attack) only this run id")
    p.add_argument("--collect", action="store_true", help="only collect the table and figures from finished runs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_data_dir(p)
    p.set_defaults(func=cmd_sweep)

    p = commands.add_parser("export", help="a folder that transformers.pipeline loads, with a model card; optionally pushed to the Hub",
                            description="Write a riftkit model as a Hugging Face folder: config.json, model.safetensors, the model "
                            "class (loaded with trust_remote_code=True, since riftkit's head is no standard transformers class), a "
                            "tokenizer that applies riftkit's pre-tokenisation to raw text, and a model card with the model's data, "
                            "training and robustness. `riftkit attack --model OUT` reads it back without running its code.")
    p.add_argument("model", help="a riftkit model folder (e.g. runs/demo/rift/best)")
    p.add_argument("out", help="the new folder (refused if it exists and is not empty)")
    p.add_argument("--push-to-hub", metavar="REPO", help="then upload the folder to this Hub repository (needs a token: huggingface-cli login)")
    p.add_argument("--private", action="store_true", help="create the Hub repository as private")
    p.add_argument("--attack-summary", action="append", default=[], metavar="SUMMARY_JSON",
                   help="an attack summary.json to report in the card (repeatable; default: the attacks found beside the model)")
    p.set_defaults(func=cmd_export)

    p = commands.add_parser("report", help="one self-contained HTML page: table, plots, browsable adversarial examples")
    p.add_argument("folder", help="a sweep folder (its output_dir or results_dir) or a training run folder")
    p.add_argument("--output", help="the HTML file (default: FOLDER/report.html)")
    p.add_argument("--baseline", help="method for paired differences (default: the sweep's)")
    p.set_defaults(func=cmd_report)

    p = commands.add_parser("demo", help="Standard vs RIFT on SST-2 with the embedded MiniLM, attacked by PWWS, side by side, with an HTML report "
                            "(about 14 min on 2 CPU cores)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides of the demo's experiment (e.g. data.max_train=400)")
    p.add_argument("--output-dir", help="where the demo is written (default runs/demo)")
    p.add_argument("--test-examples", type=int, help="seeded test sentences PWWS attacks, the same for both models (default: the demo's, 300)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_data_dir(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .data import DataFormatError, DataNotFoundError
    from .files import DamagedFileError, WriteError
    from .models import EncoderNotFoundError
    from .models.export import ExportError

    parser = build_parser()
    # Overrides may come before or after options (argparse stops positional
    # nargs="*" at the first option), so collect the stray key=value ones here.
    args, extra = parser.parse_known_args(argv)
    stray = [item for item in extra if item.startswith("-") or "=" not in item or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    try:
        return args.func(args)
    except (ConfigError, DataFormatError, DataNotFoundError, EncoderNotFoundError, FileNotFoundError, DamagedFileError, WriteError,
            FloatingPointError, ExportError) as err:
        print(f"riftkit {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
