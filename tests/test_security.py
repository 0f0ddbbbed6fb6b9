"""Security: weights only through safetensors or torch.load(weights_only=True), YAML only through the safe loader,
no code run from a config or a checkpoint (trust_remote_code never True), no network at import time or in tests."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import REPO, NetworkBlocked

SOURCE = REPO / "src" / "riftkit"
UNSAFE_MODULES = ("pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve")


def _keyword(call: ast.Call, name: str):
    """The keyword's constant value; ``...`` when absent, None when it is not a constant."""
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else None
    return ...


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def unsafe_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for every construct that could run code from data: see the module docstring."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append((node.lineno, f"from {node.module} import ..."))
        elif isinstance(node, ast.Attribute) and _dotted(node.value).split(".")[-1] in UNSAFE_MODULES:
            found.append((node.lineno, _dotted(node)))
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in ("eval", "exec", "compile", "__import__"):
                found.append((node.lineno, f"{name}()"))
            elif name == "torch.load":
                if _keyword(node, "weights_only") is not True:
                    found.append((node.lineno, "torch.load without weights_only=True"))
            elif name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all", "yaml.full_load_all"):
                found.append((node.lineno, f"{name}() (use yaml.safe_load)"))
            elif name.endswith("from_pretrained"):
                if _keyword(node, "trust_remote_code") not in (False, ...):
                    found.append((node.lineno, "from_pretrained with trust_remote_code other than False"))
                if _keyword(node, "use_safetensors") is False:
                    found.append((node.lineno, "from_pretrained(use_safetensors=False)"))
            elif name.endswith("save_pretrained") and _keyword(node, "safe_serialization") is False:
                found.append((node.lineno, "save_pretrained(safe_serialization=False)"))
            elif name in ("np.load", "numpy.load") and _keyword(node, "allow_pickle") is True:
                found.append((node.lineno, f"{name}(allow_pickle=True)"))
    return found


def test_the_scanner_finds_what_it_looks_for():
    bad = textwrap.dedent("""
        import pickle
        from dill import loads
        import torch, yaml
        torch.load(p)
        torch.load(p, weights_only=False)
        yaml.load(s)
        yaml.unsafe_load(s)
        eval("1")
        exec("x = 1")
        AutoModel.from_pretrained(p, trust_remote_code=True)
        AutoModel.from_pretrained(p, use_safetensors=False)
        model.save_pretrained(p, safe_serialization=False)
    """)
    assert [line for line, _ in unsafe_uses(ast.parse(bad))] == [2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    good = "torch.load(p, weights_only=True)\nyaml.safe_load(s)\nmodel.eval()\nAutoModel.from_pretrained(p, trust_remote_code=False)\n"
    assert unsafe_uses(ast.parse(good)) == []


def test_no_unsafe_loading_anywhere_in_riftkit():
    files = sorted(SOURCE.rglob("*.py"))
    assert len(files) > 40
    problems = [f"{path.relative_to(REPO)}:{line}: {what}" for path in files for line, what in unsafe_uses(ast.parse(path.read_text(), str(path)))]
    assert problems == []


def test_models_and_tokenizers_load_without_remote_code(tiny_encoder_dir, monkeypatch):
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from riftkit.models.encoder import load_encoder, load_tokenizer

    calls = []
    for cls in (AutoConfig, AutoModel, AutoTokenizer):
        real = cls.from_pretrained

        def record(*args, _real=real, _name=cls.__name__, **kwargs):
            calls.append((_name, kwargs))
            return _real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", record)
    load_encoder(str(tiny_encoder_dir), num_layers=1)
    load_tokenizer(str(tiny_encoder_dir))
    assert {name for name, _ in calls} == {"AutoConfig", "AutoModel", "AutoTokenizer"}
    assert all(kwargs.get("trust_remote_code", False) is False for _, kwargs in calls), calls
    assert all(kwargs.get("use_safetensors") is True for name, kwargs in calls if name == "AutoModel"), calls


def test_a_model_folder_asking_for_remote_code_runs_none(tiny_encoder_dir, tmp_path):
    from riftkit.models.encoder import load_encoder

    marker = tmp_path / "code-ran"
    (tiny_encoder_dir / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nfrom transformers import BertModel as EvilModel\n")
    config = json.loads((tiny_encoder_dir / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "evil.EvilModel", "AutoConfig": "evil.EvilModel"}
    (tiny_encoder_dir / "config.json").write_text(json.dumps(config))
    try:
        load_encoder(str(tiny_encoder_dir))
    except Exception:  # refusing is fine too
        pass
    assert not marker.exists()


def test_the_weights_of_a_model_folder_must_be_safetensors(tiny_encoder_dir, tmp_path):
    """A folder with only a pickled pytorch_model.bin is not loaded (a .bin can run code when unpickled)."""
    import torch

    from riftkit.models.encoder import EncoderNotFoundError, load_encoder

    (tiny_encoder_dir / "model.safetensors").unlink()
    torch.save({}, tiny_encoder_dir / "pytorch_model.bin")
    with pytest.raises((EncoderNotFoundError, OSError, ValueError)):
        load_encoder(str(tiny_encoder_dir))


def test_tests_cannot_reach_the_network_but_localhost_works():
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("203.0.113.7", 443), timeout=1)  # TEST-NET-3: blocked before any packet
    with pytest.raises(NetworkBlocked):
        socket.socket().connect(("huggingface.co", 443))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass


def test_tests_run_offline_for_the_hub():
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


BLOCK_ALL_SOCKETS = """
import socket
def refuse(*args, **kwargs):
    raise ConnectionError(f"network access at import time: {args!r}")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
import riftkit, riftkit.cli, riftkit.attacks, riftkit.training, riftkit.sweep, riftkit.reports, riftkit.data, riftkit.models
import riftkit.evaluation, riftkit.objectives, riftkit.substitutions
riftkit.cli.build_parser()
print("imported")
"""


def test_importing_riftkit_needs_no_network():
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}  # not even offline mode
    env["PYTHONPATH"] = str(REPO / "src")
    done = subprocess.run([sys.executable, "-c", BLOCK_ALL_SOCKETS], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "imported" in done.stdout, done.stderr[-3000:]
