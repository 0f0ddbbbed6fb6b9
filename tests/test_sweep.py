"""Multi-seed sweeps: statistics, the grid, resuming after a kill, the paired table, stale rows, --list."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from riftkit.cli import main
from riftkit.config import ConfigError
from riftkit.evaluation.statistics import mean_ci, paired_bootstrap
from riftkit.evaluation.study import read_examples
from riftkit.sweep import load_sweep
from riftkit.sweep.collect import collect
from riftkit.sweep.runner import Sweep

from .test_attacks_victims import SUBS

REPO = Path(__file__).resolve().parents[1]

# -- statistics ------------------------------------------------------------------------------------


def test_mean_ci_is_the_student_t_interval():
    values = [0.30, 0.34, 0.35]
    ci = mean_ci(values)
    mean, sd = np.mean(values), np.std(values, ddof=1)
    half = stats.t.ppf(0.975, df=2) * sd / np.sqrt(3)  # 4.303 * s / sqrt(3)
    assert ci.mean == pytest.approx(mean) and ci.low == pytest.approx(mean - half) and ci.high == pytest.approx(mean + half)
    assert mean_ci([0.5]).low == mean_ci([0.5]).high == 0.5
    with pytest.raises(ValueError):
        mean_ci([])


def test_paired_bootstrap_tells_a_consistent_gain_from_noise():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2, size=(3, 400)).astype(float)
    better = base.copy()
    flip = rng.random((3, 400)) < 0.08  # 8% of the baseline's non-robust examples become robust
    better[(base == 0) & flip] = 1.0
    gain = paired_bootstrap(better, base, resamples=2000)
    assert gain.decided and gain.low > 0 and gain.p_value < 0.01
    assert gain.mean == pytest.approx((better - base).mean())
    noise = rng.integers(0, 2, size=(3, 400)).astype(float)
    coin = paired_bootstrap(noise, base, resamples=2000)
    assert coin.low < coin.mean < coin.high
    assert paired_bootstrap(base, base, resamples=500).p_value == 1.0  # no difference at all
    with pytest.raises(ValueError):
        paired_bootstrap(base, base[:, :10])


# -- a real sweep on a tiny model ----------------------------------------------------------------------------

TOPICS = {"neg": ["bad", "awful", "boring"], "pos": ["good", "great", "fine"]}


@pytest.fixture(scope="module")
def study(tmp_path_factory, tokenizer):
    """A sweep file over a tiny encoder and a carved 2-class CSV: standard and adv x 2 seeds, tuned lr for adv."""
    from riftkit.models import random_encoder

    root = tmp_path_factory.mktemp("sweep")
    data = root / "data" / "toy.csv"
    data.parent.mkdir()
    with open(data, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(96):
            label = "neg" if i % 2 else "pos"
            words = TOPICS[label]
            writer.writerow([f"the film {i} was {words[i % 3]} and the plot {words[(i + 1) % 3]}", label])
    encoder = root / "tiny-encoder"
    random_encoder(tokenizer.vocab_size, seed=0).save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    subs = root / "subs.json"
    subs.write_text(json.dumps({w: list(s) for w, s in SUBS.items()} | {"bad": ["poor"], "good": ["decent"], "great": ["terrific"], "boring": ["dull"]}))
    base = root / "base.yaml"
    base.write_text(
        f"name: toy\ndata:\n  dataset: {data}\n  labels: [neg, pos]\n  dev_size: 16\n  test_size: 16\n"
        f"model:\n  encoder: {encoder}\n  max_length: 16\ntrain:\n  epochs: 3\n  batch_size: 16\n  lr: 3.0e-3\n  progress: false\n"
        f"  select_max_examples: 8\n  forgetting_probe_size: 8\nobjective:\n  substitutions: {subs}\n  adv_steps: 2\n"
    )
    sweep = root / "sweep.yaml"
    sweep.write_text(
        "name: toy-study\nbase: base.yaml\n"
        f"output_dir: {root / 'out'}\nresults_dir: {root / 'results'}\nseeds: [0, 1]\nbaseline: standard\n"
        "overrides: {train.select_metric: dev_robust_ascc}\n"
        "methods:\n  standard: {overrides: {train.method: standard}}\n"
        "  adv:\n    overrides: {train.method: adv}\n    tune: {train.lr: [3.0e-3, 1.0e-4]}\n"
        f"evaluation:\n  attack: {{seed: 0, substitutions: {subs}, lm: none}}\n  attacks:\n    - {{attack: pwws, n: 12}}\n"
    )
    return sweep


def _cli(*args) -> int:
    return main(["sweep", *map(str, args), "--quiet"])


def test_sweep_lists_runs_then_resumes_and_tabulates_paired_differences(study, capsys):
    assert _cli(study, "--list") == 0
    listed = capsys.readouterr().out.splitlines()
    commands = [line for line in listed if line.startswith("riftkit sweep")]
    # tuning runs first (adv, 2 values on seed 0), then the untuned method's seeds; adv's seeds wait for its tuning
    assert [c.split("--run ")[1] for c in commands] == ["adv@lr=0.003-seed0", "adv@lr=0.0001-seed0", "standard-seed0", "standard-seed1"]
    assert [r.run_id for r in load_sweep(study).final_runs({"adv": {"train.lr": 3e-3}})] == [  # seed-major
        "standard-seed0", "adv@lr=0.003-seed0", "standard-seed1", "adv@lr=0.003-seed1"]
    assert any(line.startswith("# the runs of adv") for line in listed)

    assert _cli(study, "--run", "standard-seed0") == 0  # one run, as a scheduler would start it
    spec = load_sweep(study)
    sweep = Sweep(spec)
    done = {r.run_id for r, _ in sweep.unfinished()[0]}
    assert "standard-seed0" not in done and "standard-seed1" in done

    # a kill during an attack: the run's attack lost its done-marker and all but 5 of its examples
    folder = spec.output_dir / "runs" / "standard-seed0" / "attacks" / "pwws-test-n12-seed0"
    lines = (folder / "examples.jsonl").read_text().splitlines()
    full = {json.loads(line)["uid"]: json.loads(line) for line in lines}
    (folder / "examples.jsonl").write_text("\n".join(lines[:5]) + "\n")
    (folder / "sweep_done.json").unlink()
    shutil.rmtree(spec.results_dir / "runs" / "standard-seed0" / "attacks" / folder.name)  # an unfinished attack is never copied
    capsys.readouterr()
    assert _cli(study) == 0  # everything else, and the rest of that attack
    sessions = [json.loads(line) for line in (folder / "sessions.jsonl").read_text().splitlines()]
    assert sessions[-1]["examples"] == len(lines) - 5
    assert {r["uid"]: r for r in read_examples(folder)} == full  # the resumed attack gives the same per-example results

    assert Sweep(spec).unfinished() == ([], [])
    table = json.loads((spec.results_dir / "table.json").read_text())
    rows = {r["variant"]: r for r in table["rows"]}
    assert set(rows) == {"standard", "adv"}  # tuned values are not part of the row's name
    winner = next(r for r in table["tuning"]["adv"] if r.get("won"))
    assert rows["adv"]["params"] == {"train.lr": winner["values"]["train.lr"]} and rows["adv"]["n_seeds"] == 2
    assert winner["value"] == max(r["value"] for r in table["tuning"]["adv"])

    # the paired difference is adv minus standard on the same seeds and the same uids, by hand
    diffs = []
    for seed in (0, 1):
        a = {r["uid"]: r["outcome"] == "failed" for r in read_examples(spec.results_dir / "runs" / f"adv@lr={winner['values']['train.lr']:g}-seed{seed}" / "attacks" / "pwws-test-n12-seed0")}
        b = {r["uid"]: r["outcome"] == "failed" for r in read_examples(spec.results_dir / "runs" / f"standard-seed{seed}" / "attacks" / "pwws-test-n12-seed0")}
        assert set(a) == set(b) and len(a) == 12  # the same seeded test examples for every model
        diffs += [float(a[u]) - float(b[u]) for u in a]
    paired = rows["adv"]["vs_baseline"]
    assert paired["mean"] == pytest.approx(np.mean(diffs)) and paired["paired_seeds"] == [0, 1]
    assert rows["adv"]["robust_accuracy"]["values"] == [
        json.loads((spec.results_dir / "runs" / f"adv@lr={winner['values']['train.lr']:g}-seed{s}" / "attacks" / "pwws-test-n12-seed0" / "summary.json").read_text())["robust_accuracy"]
        for s in (0, 1)]
    assert rows["standard"]["vs_baseline"] is None

    # the committed copy: small files and gzipped example logs, never weights; the same table from it
    assert not list(spec.results_dir.rglob("*.safetensors"))
    assert list(spec.results_dir.rglob("examples.jsonl.gz"))
    run_record = json.loads((spec.results_dir / "runs" / "standard-seed1" / "run.json").read_text())
    assert run_record["commit"] is None or len(run_record["commit"]) == 40
    assert (spec.results_dir / "table.md").read_text().count("| standard |") == 1
    assert (spec.results_dir / "plots" / "tradeoff-pwws-test-n12-seed0.png").is_file()
    assert (spec.results_dir / "plots" / "forgetting.svg").is_file()

    # a fresh clone has only the committed copy (no weights): nothing is left to run, and the table is the same
    shutil.rmtree(spec.output_dir)
    assert Sweep(spec).unfinished() == ([], [])
    assert _cli(study, "--collect") == 0
    again = {r["variant"]: r for r in json.loads((spec.results_dir / "table.json").read_text())["rows"]}
    assert {v: r["robust_accuracy"] for v, r in again.items()} == {v: r["robust_accuracy"] for v, r in rows.items()}
    assert again["adv"]["vs_baseline"] == rows["adv"]["vs_baseline"]

    # a paired comparison beyond the baseline's: standard - adv is, per pair, minus adv's difference against standard
    assert _cli(study, "--collect", "comparisons=[[standard, adv]]") == 0
    compared = json.loads((spec.results_dir / "table.json").read_text())["comparisons"]
    assert [(c["a"], c["b"], c["attack"]) for c in compared] == [("standard", "adv", rows["adv"]["attack"])]
    assert compared[0]["difference"]["mean"] == pytest.approx(-rows["adv"]["vs_baseline"]["mean"])
    assert compared[0]["difference"]["paired_seeds"] == [0, 1]
    assert "## Paired comparisons" in (spec.results_dir / "table.md").read_text()
    with pytest.raises(ConfigError, match=r"comparisons\[0\]: \['rift'\] not among the sweep's variants"):
        load_sweep(study, ["comparisons=[[rift, adv]]"])

    # changed training code since a run: its row is marked stale
    record_path = spec.results_dir / "runs" / "standard-seed1" / "run.json"
    record = json.loads(record_path.read_text())
    record["training_code_digest"] = "0" * 64
    record_path.write_text(json.dumps(record))
    assert _cli(study, "--collect") == 0
    rows = {r["variant"]: r for r in json.loads((spec.results_dir / "table.json").read_text())["rows"]}
    assert rows["standard"]["stale"] and not rows["adv"]["stale"]

    # the HTML report of the committed folder, with the same stale marks as the table
    from riftkit.reports.build import build_report
    shown = {}
    for row in build_report(spec.results_dir).rows:
        shown.setdefault(row["variant"], set()).add(row["stale"])
    assert shown["standard"] == {"yes"} and shown["adv"] == {""}
    # a pair the sweep file asks for, collected before either side had runs (no "comparisons" entry then),
    # is in the report once they have: it asks for the requested pairs, not the ones that had data
    saved = json.loads((spec.results_dir / "table.json").read_text())
    (spec.results_dir / "table.json").write_text(json.dumps(dict(saved, comparisons=[], comparison_pairs=[["standard", "adv"]])))
    assert any(n.startswith("Paired comparison standard - adv (pwws") for n in build_report(spec.results_dir).notes)
    (spec.results_dir / "table.json").write_text(json.dumps(saved))
    assert main(["report", str(spec.results_dir)]) == 0
    page = (spec.results_dir / "report.html").read_text()
    assert "toy-study" in page and "data:image/png;base64," in page and 'class="example"' in page


def test_a_killed_training_run_starts_over_or_resumes(study, tmp_path):
    spec = load_sweep(study, [f"output_dir={tmp_path / 'out'}", "results_dir=null", "seeds=[0]", "evaluation.attacks=[]"])
    sweep = Sweep(spec)
    run = next(r for r, _ in sweep.unfinished()[0] if r.run_id == "standard-seed0")
    folder = sweep.run_dir(run)
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text('{"event": "start", "from": "a killed run"}\n')
    sweep.run(run, final=True)
    assert "a killed run" not in (folder / "metrics.jsonl").read_text() and (folder / "summary.json").is_file()
    # killed after its last checkpoint, before its summary: resumed from the checkpoint, not retrained
    summary = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").unlink()
    said = []
    Sweep(spec, log=said.append).run(run, final=True)
    assert any("resuming" in line for line in said)
    again = json.loads((folder / "summary.json").read_text())
    assert again["best_dev"] == summary["best_dev"] and again["test"] == summary["test"]
    # the run record's training time is the training's own clock over both sessions, not the resumed session's
    record = json.loads((folder / "run.json").read_text())
    assert record["train_wall_time_s"] == again["wall_time_s"]


def test_bad_sweep_files_are_named(tmp_path, study):
    bad = tmp_path / "bad.yaml"
    text = study.read_text()
    bad.write_text(text.replace("baseline: standard", "baseline: nope").replace("base: base.yaml", f"base: {study.parent / 'base.yaml'}"))
    with pytest.raises(ConfigError, match="baseline 'nope'"):
        load_sweep(bad)
    bad.write_text(text.replace("base: base.yaml", f"base: {study.parent / 'base.yaml'}").replace("train.method: adv}", "train.methd: adv}"))
    with pytest.raises(ConfigError, match=r"run adv@lr=0.003-seed0: .*methd"):
        load_sweep(bad)
    bad.write_text(text.replace("base: base.yaml", f"base: {study.parent / 'base.yaml'}").replace("seeds: [0, 1]", "seeds: [0, 0]"))
    with pytest.raises(ConfigError, match="seeds"):
        load_sweep(bad)
    with gzip.open(tmp_path / "x.gz", "wt") as handle:  # read_examples reads the gzipped copy
        handle.write('{"uid": "a", "outcome": "failed"}\n')
    (tmp_path / "x.gz").rename(tmp_path / "examples.jsonl.gz")
    assert read_examples(tmp_path) == [{"uid": "a", "outcome": "failed"}]


def test_a_sweeps_results_folder_is_not_ignored_by_git():
    # results_dir/runs/<run_id>/ holds what a fresh clone resumes and tabulates from; a .gitignore
    # pattern for the working folders (runs/) once matched it too, and the run files were never committed
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("results/study-sst2/runs/adv_base-seed0/summary.json", "results/demo/runs/rift-seed0/attacks/x/examples.jsonl.gz"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=root).returncode == 0
        assert not ignored, f"{path} is ignored by git"
    assert subprocess.run(["git", "check-ignore", "-q", "runs/study-sst2/runs/x/best/model.safetensors"], cwd=root).returncode == 0


def test_a_method_can_take_only_some_of_the_attacks(study, tmp_path):
    # part 3 of the study attacks its extra methods with PWWS only, in the same sweep as the baseline (its pairs)
    overrides = [f"output_dir={tmp_path / 'out'}", f"results_dir={tmp_path / 'results'}", "seeds=[0]",
                 "methods.adv.tune={train.lr: [3.0e-3]}", "methods.standard.attacks=[pwws]",
                 "evaluation.attacks=[{attack: pwws, n: 8}, {attack: ascc, n: 8}]"]
    spec = load_sweep(study, overrides)
    assert [c.attack for c in spec.attack_configs("standard")] == ["pwws"]
    assert [c.attack for c in spec.attack_configs("adv")] == ["pwws", "ascc"]
    sweep = Sweep(spec, log=lambda message: None)
    sweep.run_all()
    assert Sweep(spec).unfinished() == ([], [])
    attacked = {run: sorted(p.name for p in (spec.output_dir / "runs" / run / "attacks").iterdir()) for run in ("standard-seed0", "adv@lr=0.003-seed0")}
    assert attacked == {"standard-seed0": ["pwws-test-n8-seed0"], "adv@lr=0.003-seed0": ["ascc-test-n8-seed0", "pwws-test-n8-seed0"]}
    table = collect(Sweep(spec))
    rows = {(r["variant"], r["attack"]) for r in table["rows"] if r.get("attack")}
    assert ("standard", "pwws-test-n8-seed0") in rows and ("adv", "ascc-test-n8-seed0") in rows
    assert ("standard", "ascc-test-n8-seed0") not in rows
    with pytest.raises(ConfigError, match=r"methods.standard.attacks: \['genetic'\] not in evaluation.attacks"):
        load_sweep(study, [*overrides, "methods.standard.attacks=[genetic]"])


def test_a_stale_row_names_the_files_changed_since_its_commit(tmp_path):
    # a row marked stale by digest alone leaves the reader guessing whether the change could move its numbers
    import subprocess

    from riftkit.reports.tables import stale_markdown
    from riftkit.sweep.provenance import changed_files

    if shutil.which("git") is None:
        pytest.skip("no git")
    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()  # noqa: E731
    git("init", "-q")
    for path in ("src/riftkit/models/backends.py", "src/riftkit/training/loop.py", "src/riftkit/attacks/pwws.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x = 1\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    commit = git("rev-parse", "HEAD")
    assert changed_files(commit, ("models", "training"), root=tmp_path) == []
    (tmp_path / "src/riftkit/models/backends.py").write_text("x = 2\n")
    (tmp_path / "src/riftkit/attacks/pwws.py").write_text("x = 2\n")
    assert changed_files(commit, ("models", "training"), root=tmp_path) == ["models/backends.py"]
    assert changed_files(commit[:12], ("models", "attacks"), root=tmp_path) == ["attacks/pwws.py", "models/backends.py"]
    assert changed_files("0" * 40, ("models",), root=tmp_path) is None and changed_files(None, ("models",)) is None
    table = {"rows": [{"variant": "adv", "attack": "pwws", "commits": [commit[:12]], "stale": True, "stale_files": ["models/backends.py"]},
                      {"variant": "std", "attack": None, "commits": ["abc+dirty"], "stale": True, "stale_files": None},
                      {"variant": "rift", "attack": "pwws", "commits": [commit[:12]], "stale": False}]}
    text = stale_markdown(table)
    assert "| adv | pwws |" in text and "`models/backends.py`" in text and "| std | (training) |" in text and "unknown" in text
    assert "rift" not in text


def test_the_alpha_ablation_takes_the_default_value_from_the_methods_own_row():
    # rift (alpha 0.1 by its overrides) is the ablation's middle point; without it an interior optimum at the
    # default cannot show. Rows that differ in anything else (another method, the unconditional term) stay out.
    from riftkit.sweep.collect import ablation_rows

    def config(alpha, info="conditional", method="rift", seed=0, extra=None):
        return {"name": f"s/{method}", "output_dir": f"runs/{method}-{seed}", "train": {"method": method, "seed": seed, "progress": seed == 0},
                "objective": {"alpha": alpha, "info": info, **(extra or {})}}

    runs = [{"variant": "rift_alpha@alpha=0.3", "config": config(0.3, seed=1, extra={"info_queue_size": 0})},
            {"variant": "rift_alpha@alpha=1", "config": config(1.0, extra={"info_queue_size": 0})},
            {"variant": "rift", "config": config(0.1)},  # ran before info_queue_size existed: compared on shared fields
            {"variant": "rift_unconditional", "config": config(0.1, info="unconditional")},
            {"variant": "adv_base", "config": config(0.1, info="none", method="adv")}]
    rows = [{"variant": v, "params": p, "attack": "pwws"} for v, p in (
        ("rift_alpha@alpha=0.3", {"objective.alpha": 0.3}), ("rift_alpha@alpha=1", {"objective.alpha": 1.0}),
        ("rift", {}), ("rift_unconditional", {}), ("adv_base", {}))]
    got = ablation_rows({"rows": rows}, runs, "objective.alpha")
    assert sorted((r["variant"], r["params"]["objective.alpha"]) for r in got) == [
        ("rift", 0.1), ("rift_alpha@alpha=0.3", 0.3), ("rift_alpha@alpha=1", 1.0)]
    assert rows[2]["params"] == {}  # the table's own row is not changed


def test_a_trained_run_reaches_the_results_folder_even_when_killed_before_its_attacks(study, tmp_path):
    # a tuning run killed during the attack it got as a provisional winner, and then outvoted, is never run
    # again: its training must already be in results_dir, or a fresh clone retrains it
    spec = load_sweep(study, [f"output_dir={tmp_path / 'out'}", f"results_dir={tmp_path / 'results'}", "seeds=[0]", "evaluation.attacks=[]"])
    Sweep(spec, log=lambda m: None).run_all()
    copy = spec.results_dir / "runs" / "adv@lr=0.0001-seed0"
    assert (copy / "summary.json").is_file()
    shutil.rmtree(copy)  # what the kill left: trained in output_dir, no committed copy
    assert Sweep(spec).unfinished() == ([], [])  # nothing to train or attack ...
    Sweep(spec, log=lambda m: None).run_all()
    assert (copy / "summary.json").is_file() and (copy / "run.json").is_file()  # ... yet the copy is made


def test_a_method_can_take_more_seeds_than_the_others(study):
    # part 6 of the study: more seeds only for the rows whose paired difference is undecided, seed by seed
    spec = load_sweep(study, ["methods.standard.seeds=[0, 1, 2, 3]"])
    runs = [r.run_id for r in spec.final_runs({"adv": {"train.lr": 3e-3}})]
    assert runs == ["standard-seed0", "adv@lr=0.003-seed0", "standard-seed1", "adv@lr=0.003-seed1", "standard-seed2", "standard-seed3"]
    assert [r.run_id for r in spec.tuning_runs()] == ["adv@lr=0.003-seed0", "adv@lr=0.0001-seed0"]  # tuning stays on the first seed
    with pytest.raises(ConfigError, match=r"methods.standard.seeds: expected a non-empty list of distinct integers"):
        load_sweep(study, ["methods.standard.seeds=[1, 1]"])


def test_the_ablation_figure_averages_the_same_seeds_at_every_point():
    # rift at the default alpha had 3 seeds while the other alpha values had one: its point was a 3-seed mean
    # beside 1-seed points, which mixes the seed effect (several points here) into the curve
    from riftkit.sweep.collect import figures, on_shared_seeds

    def ci(values):
        return {"mean": sum(values) / len(values), "low": min(values), "high": max(values), "n": len(values), "values": values}

    def row(variant, alpha, seeds, robust, clean):
        return {"variant": variant, "attack": "pwws", "params": {"objective.alpha": alpha} if alpha != 0.1 else {}, "seeds": seeds,
                "attack_seeds": seeds, "n_seeds": len(seeds), "robust_accuracy": ci(robust), "test_accuracy": ci(clean)}

    rows = [row("rift", 0.1, [0, 1, 2], [0.24, 0.22, 0.16], [0.76, 0.75, 0.75]),
            row("rift_alpha@alpha=0.3", 0.3, [0], [0.19], [0.74]), row("rift_alpha@alpha=1", 1.0, [0, 2], [0.12, 0.10], [0.70, 0.71])]
    shared, seeds = on_shared_seeds(rows)
    assert seeds == [0]
    assert [r["robust_accuracy"]["mean"] for r in shared] == [0.24, 0.19, 0.12]
    assert [r["test_accuracy"]["values"] for r in shared] == [[0.76], [0.74], [0.70]] and {r["n_seeds"] for r in shared} == {1}
    assert rows[0]["robust_accuracy"]["mean"] == pytest.approx(0.2067, abs=1e-3)  # the table's own rows are not changed
    assert on_shared_seeds([row("a", 0.3, [1], [0.2], [0.7]), row("b", 1.0, [2], [0.1], [0.7])])[1] is None

    def config(alpha):
        return {"name": "s", "train": {"method": "rift", "seed": 0}, "objective": {"alpha": alpha, "info": "conditional"}}

    runs = [{"variant": r["variant"], "config": config(a), "metrics": []} for r, a in zip(rows, (0.1, 0.3, 1.0))]
    made = figures({"attacks": ["pwws"], "rows": rows, "tuning": {}}, runs)
    ablation = [f for f in made if f.name.startswith("ablation")]
    assert len(ablation) == 1 and "mean over seeds 0;" in ablation[0].caption


def test_code_verified_to_compute_the_same_counts_as_current(tmp_path):
    """An equivalence record (a refactor retrained bit-identically) keeps the older code's runs current, follows a
    chain of records back, applies only to the exact digests it names, and points the changed-files diff at the
    older code's commit."""
    from riftkit.sweep.provenance import ATTACK_CODE, TRAINING_CODE, code_digest, current_code

    today = {"training": code_digest(TRAINING_CODE), "attack": code_digest(ATTACK_CODE)}
    path = tmp_path / "equivalent_code.json"
    assert current_code(path).training == {today["training"]} and current_code(path).reference_commit is None
    records = [{"code": today, "same_as": {"training": "t1", "attack": "a1", "commit": "c1"}, "evidence": "retrained bit-identically"},
               {"code": {"training": "t1", "attack": "a1"}, "same_as": {"training": "t0", "attack": "a0", "commit": "c0"}, "evidence": "older"},
               {"code": {"training": "t9", "attack": "a9"}, "same_as": {"training": "t8", "attack": "a8", "commit": "c8"}, "evidence": "other"}]
    path.write_text(json.dumps({"equivalences": records}))
    code = current_code(path)
    assert code.training == {today["training"], "t1", "t0"} and code.attack == {today["attack"], "a1", "a0"}
    assert code.reference_commit == "c0" and code.evidence == ("retrained bit-identically", "older")
    path.write_text(json.dumps({"equivalences": records[2:]}))  # a record for other code does not apply
    assert current_code(path).training == {today["training"]}


def test_the_fidelity_sweep_runs_the_three_cpu_configs():
    """configs/study/fidelity_sst2.yaml builds its three runs from one base: each must equal its CPU config
    (configs/cpu/sst2_{standard_small,adv,rift}.yaml) in every setting but the run's name and folder."""
    import dataclasses

    from riftkit.config import load_config, to_dict

    study = load_sweep(REPO / "configs" / "study" / "fidelity_sst2.yaml")
    runs = {run.method: study.experiment(run) for run in study.final_runs({})}
    for method, path in {"standard": "sst2_standard_small", "adv_base": "sst2_adv", "rift": "sst2_rift"}.items():
        expected = load_config(REPO / "configs" / "cpu" / f"{path}.yaml")
        got = dataclasses.replace(runs[method], name=expected.name, output_dir=expected.output_dir)
        assert to_dict(got) == to_dict(expected), method
