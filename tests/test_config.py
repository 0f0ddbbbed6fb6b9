import json
import re

import pytest

from riftkit.config import (
    MOVED_KEYS,
    ASCCSearchConfig,
    AttackConfig,
    ConfigError,
    ExperimentConfig,
    GeneticConfig,
    PWWSConfig,
    apply_overrides,
    from_dict,
    load_config,
    read_yaml_mapping,
    resolve_data_dir,
    save_config,
)


def write(tmp_path, text):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_yaml_to_typed_dataclasses(tmp_path):
    config = load_config(write(tmp_path, "name: x\ndata:\n  dataset: mr\n  dev_size: 100\ntrain:\n  epochs: 5\n  lr: 1.0e-4\n"))
    assert isinstance(config, ExperimentConfig)
    assert (config.name, config.data.dataset, config.train.epochs, config.train.lr) == ("x", "mr", 5, 1e-4)
    assert config.data.dev_size == 100.0 and isinstance(config.data.dev_size, float)
    assert config.model.encoder == "embedded"  # defaults fill the rest


def test_unknown_key_names_file_and_key(tmp_path):
    path = write(tmp_path, "train:\n  epochz: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "train" in str(err.value) and "epochz" in str(err.value)


def test_wrong_type_and_bad_choice(tmp_path):
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(write(tmp_path, "train:\n  epochs: three\n"))
    with pytest.raises(ConfigError, match="data.source"):
        load_config(write(tmp_path, "data:\n  source: ftp\n"))
    with pytest.raises(ConfigError, match="train.balanced_batches"):
        load_config(None, ["train.balanced_batches=1"])


def test_overrides_reach_any_field(tmp_path):
    config = load_config(write(tmp_path, "train:\n  epochs: 5\n"), ["train.epochs=2", "data.labels=[a, b]", "model.num_layers=3", "data.max_train=null"])
    assert config.train.epochs == 2 and config.data.labels == ["a", "b"] and config.model.num_layers == 3
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="nonsense"):
        load_config(None, ["nonsense.x=1"])


def test_yaml_is_loaded_safely(tmp_path):
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(write(tmp_path, "name: !!python/object/apply:os.system ['echo hacked']\n"))


def test_round_trip(tmp_path):
    config = load_config(None, ["train.epochs=7", "data.dataset=snli"])
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == config


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("RIFTKIT_DATA_DIR", "/from/env")
    assert str(resolve_data_dir("/from/config", "/from/cli")) == "/from/cli"
    assert str(resolve_data_dir("/from/config")) == "/from/env"
    monkeypatch.delenv("RIFTKIT_DATA_DIR")
    assert str(resolve_data_dir("/from/config")) == "/from/config"
    assert resolve_data_dir(None) is None


def test_every_shipped_config_parses():
    from pathlib import Path

    from riftkit.config import read_yaml_mapping
    from riftkit.sweep import load_sweep

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))
    assert len(configs) >= 8
    sweeps = [p for p in configs if "methods" in read_yaml_mapping(p)]
    assert len(sweeps) >= 3  # configs/study/sst2.yaml, configs/paper/study_{imdb,snli}.yaml
    for path in configs:
        if path in sweeps:  # a sweep: every run of it resolves to an experiment (load_sweep checks them all)
            spec = load_sweep(path)
            assert spec.output_dir.parts[0] == "runs" and spec.results_dir.parts[0] == "results", path
            continue
        config = load_config(path)
        assert config.name and config.output_dir.startswith("runs/"), path


# METHOD.md ("Losses", "Training recipe"): per data set beta (Eq. 9), alpha (Eq. 11), batch size and max tokens;
# AdamW 2e-5, 20 epochs, weight decay 0 on the encoder and 2e-4 on the task layers, for every method.
PAPER = {
    "imdb": {"beta": 10.0, "alpha": 0.1, "batch_size": 32, "max_length": 300},
    "snli": {"beta": 5.0, "alpha": 0.7, "batch_size": 120, "max_length": 80},
}
PAPER_METHODS = ("standard", "adv", "adv_ptwd", "adv_mixout", "rift")


def test_paper_configs_follow_method_md():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "configs" / "paper"
    seen = set()
    for path in sorted(p for p in folder.glob("*.yaml") if not p.stem.startswith("study_")):
        dataset, encoder, method = path.stem.split("_", 2)
        config = load_config(path)
        expected = PAPER[dataset]
        where = path.name
        seen.add((dataset, encoder, method))
        assert config.data.dataset == dataset and config.model.encoder == {"bert": "bert-base-uncased", "roberta": "roberta-base"}[encoder], where
        assert config.train.method == method, where
        assert (config.train.lr, config.train.epochs, config.train.batch_size) == (2e-5, 20, expected["batch_size"]), where
        assert config.model.max_length == expected["max_length"], where
        assert (config.train.encoder_weight_decay, config.train.head_weight_decay) == (0.0, 2e-4), where
        assert config.model.head_dropout == 0.0, where  # the head is Linear - ReLU - Linear, no dropout
        assert (config.train.warmup_ratio, config.train.warmup_start_factor) == (0.1, 0.1), where  # 2 of 20 epochs from 0.1 x lr
        assert config.train.select_metric == "dev_robust_ascc", where  # every method, Standard included: dev robust accuracy
        if method != "standard":
            assert config.objective.beta == expected["beta"] and config.train.balanced_batches, where
            assert (config.objective.adversary.steps, config.objective.adversary.lr, config.objective.adversary.sparse_weight) == (10, 1.0, 15.0), where
        if method == "rift":
            assert config.objective.info.alpha == expected["alpha"] and config.objective.info.kind in ("auto", "conditional"), where
            assert config.objective.info.temperature == 0.2 and config.objective.info.queue_size == 0, where  # Eq. 10 exactly
        assert (config.objective.ptwd.weight > 0) == (method == "adv_ptwd") and (config.objective.mixout.p > 0) == (method == "adv_mixout"), where
    assert seen == {(d, e, m) for d in PAPER for e in ("bert", "roberta") for m in PAPER_METHODS}  # all 20 of the grid


def attack_config(tmp_path, text: str = "", overrides: tuple[str, ...] = ()) -> AttackConfig:
    """The attack section of a YAML file plus overrides, read as ``riftkit attack`` reads them."""
    values = apply_overrides(read_yaml_mapping(write(tmp_path, text)), list(overrides))
    return from_dict(AttackConfig, values.get("attack") or {}, "attack")


def test_each_search_has_its_own_typed_section(tmp_path):
    yaml_text = "attack:\n  attack: genetic\n  query_budget: 2000\n  genetic: {population: 60, generations: 40}\n  ascc:\n    steps: 5\n"
    config = attack_config(tmp_path, yaml_text, ("attack.genetic.population=8", "attack.ascc.decode=single", "attack.pwws.adaptive=true"))
    assert isinstance(config.genetic, GeneticConfig) and isinstance(config.ascc, ASCCSearchConfig) and isinstance(config.pwws, PWWSConfig)
    assert (config.query_budget, config.genetic.population, config.genetic.generations, config.genetic.temperature) == (2000, 8, 40, 0.3)
    assert (config.ascc.steps, config.ascc.decode, config.ascc.restarts) == (5, "single", 1) and config.pwws.adaptive is True
    assert attack_config(tmp_path) == AttackConfig()  # every section has its defaults
    assert attack_config(tmp_path, "attack:\n  genetic: {temperature: 1}\n").genetic.temperature == 1.0
    with pytest.raises(ConfigError, match=r"attack\.genetic: unknown key\(s\) \['pop'\]"):
        attack_config(tmp_path, "", ("attack.genetic.pop=3",))
    with pytest.raises(ConfigError, match=r"attack\.ascc\.decode: 'both' is not one of"):
        attack_config(tmp_path, "", ("attack.ascc.decode=both",))
    with pytest.raises(ConfigError, match=r"attack\.genetic\.population: expected int"):
        attack_config(tmp_path, "attack:\n  genetic: {population: many}\n")


@pytest.mark.parametrize("old, new", sorted(MOVED_KEYS[AttackConfig].items()))
def test_an_old_flat_attack_key_names_its_new_place(tmp_path, old, new):
    value = {"ascc_decode": "single", "pwws_adaptive": "true", "temperature": "0.5"}.get(old, "3")
    message = re.escape(f"attack.{old} moved to attack.{new}") + "$"
    with pytest.raises(ConfigError, match=message):
        attack_config(tmp_path, "", (f"attack.{old}={value}",))
    with pytest.raises(ConfigError, match=message):
        attack_config(tmp_path, f"attack:\n  {old}: {value}\n")
    target = AttackConfig()  # the table points at real fields
    for part in new.split("."):
        assert hasattr(target, part)
        target = getattr(target, part)


def test_result_settings_hold_only_the_section_of_the_attack_run():
    pwws = AttackConfig(attack="pwws")
    settings = pwws.result_settings()
    assert settings["pwws"] == {"adaptive": False} and "genetic" not in settings and "ascc" not in settings
    assert settings["seed"] == 0 and "in_flight" not in settings and "output_dir" not in settings  # NOT_A_RESULT stays out
    json.dumps(settings)  # JSON as it stands
    assert AttackConfig(attack="pwws", genetic=GeneticConfig(population=8)).result_settings() == settings
    genetic = AttackConfig(attack="genetic").result_settings()
    assert genetic["genetic"] == {"population": 60, "generations": 40, "temperature": 0.3} and "pwws" not in genetic
    assert AttackConfig(attack="genetic", genetic=GeneticConfig(population=8)).result_settings() != genetic
    assert AttackConfig(attack="ascc", ascc=ASCCSearchConfig(decode="single")).result_settings()["ascc"]["decode"] == "single"
    assert "nope" not in AttackConfig(attack="nope").result_settings()  # an attack without a section: common fields only


def test_paper_study_sweeps_resolve_to_the_papers_settings():
    """configs/paper/study_*.yaml: every run (tuning values included) has METHOD.md's settings; the paper's protocol of attacks."""
    from pathlib import Path

    from riftkit.sweep import load_sweep

    for dataset, expected in PAPER.items():
        spec = load_sweep(Path(__file__).resolve().parents[1] / "configs" / "paper" / f"study_{dataset}.yaml")
        assert set(spec.methods) == {"standard", "adv_base", "adv_ptwd", "adv_mixout", "rift"} and spec.seeds == [0, 1, 2]
        winners = {m: {k: v[0] for k, v in spec.methods[m].tune.items()} for m in ("adv_ptwd", "adv_mixout")}
        for run in spec.tuning_runs() + spec.final_runs(winners):
            config = spec.experiment(run)
            assert config.model.max_length == expected["max_length"] and config.train.epochs == 20, run.run_id
            assert config.train.select_metric == "dev_robust_ascc" and config.objective.beta == expected["beta"], run.run_id
            if run.method == "rift":
                assert config.objective.info.alpha == expected["alpha"] and config.objective.info.kind == "conditional"
        attacks = {c.attack: c for c in spec.attack_configs()}
        assert set(attacks) == {"genetic", "pwws", "ascc"} and all(c.n == 1000 and c.split == "test" for c in attacks.values())
        assert (attacks["genetic"].genetic.population, attacks["genetic"].genetic.generations) == (60, 40)


def test_cpu_study_sweeps_keep_the_papers_per_dataset_beta_and_alpha():
    # the CPU studies shrink data, length, epochs and batch, never the objective: every adversarial run trains with
    # its data set's beta (Eq. 9) and every RIFT run with its alpha (Eq. 11), except a grid that sweeps alpha itself
    from pathlib import Path

    from riftkit.sweep import load_sweep

    folder = Path(__file__).resolve().parents[1] / "configs" / "study"
    checked = set()
    for path in sorted(folder.glob("*.yaml")):
        spec = load_sweep(path)
        for run in spec.final_runs({name: {} for name in spec.methods}):
            config = spec.experiment(run)
            expected = PAPER.get(config.data.dataset, PAPER["imdb"])  # sentiment (IMDB, SST-2): the IMDB values
            where = f"{path.name}: {run.run_id}"
            changes_beta = "objective.beta" in spec.methods[run.method].overrides
            if config.train.method != "standard" and not changes_beta:  # (a controlled run may change beta itself)
                assert config.objective.beta == expected["beta"], where
            chooses_alpha = "objective.info.alpha" in spec.methods[run.method].overrides  # (a run given dev's choice of alpha)
            if config.train.method == "rift" and "objective.alpha" not in dict(run.params) and not chooses_alpha:
                assert config.objective.info.alpha == expected["alpha"], where
            checked.add((config.data.dataset, config.train.method))
    assert {("snli", "rift"), ("sst2", "rift"), ("snli", "adv"), ("sst2", "adv")} <= checked
