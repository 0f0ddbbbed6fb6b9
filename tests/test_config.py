import pytest

from riftkit.config import ConfigError, ExperimentConfig, load_config, resolve_data_dir, save_config


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

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))
    assert len(configs) >= 8
    for path in configs:
        config = load_config(path)
        assert config.name and config.output_dir.startswith("runs/"), path
