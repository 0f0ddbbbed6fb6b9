"""Create and prepare the separate TextAttack virtual environment used by attack_speed.py.

TextAttack pins old dependencies (flair caps transformers below 5), so it can
never share riftkit's environment. Recipe (ENVIRONMENT.md): torch first (the
CPU wheel on disk), then textattack with "transformers<5" and flair==0.15.1.
Importing textattack offline needs NLTK's stopword list and a marker file in
TA_CACHE_DIR; both are written here, with riftkit's own stopword list.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = REPO / ".venv-textattack"
PACKAGES = [["torch==2.13.0"], ["textattack", "transformers<5", "flair==0.15.1"]]


def python_of(env: Path) -> Path:
    return env / "bin" / "python"


def ensure_env(env: Path = DEFAULT_VENV, log=print) -> Path:
    """Create the environment when textattack is not importable there; returns its python."""
    python = python_of(env)
    if python.is_file() and subprocess.run([str(python), "-c", "import importlib.util as u, sys; sys.exit(u.find_spec('textattack') is None)"]).returncode == 0:
        return python
    log(f"creating the TextAttack environment at {env} (about 3 minutes)")
    venv.EnvBuilder(with_pip=True, clear=not python.is_file()).create(env)
    for group in PACKAGES:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *group], check=True)
    return python


def offline_env(env: Path = DEFAULT_VENV) -> dict[str, str]:
    """Environment variables that let ``import textattack`` run with no network."""
    from riftkit.attacks.constraints import STOPWORDS

    nltk_data = env / "nltk_data"
    cache = env / "textattack_cache"
    (nltk_data / "corpora" / "stopwords").mkdir(parents=True, exist_ok=True)
    (nltk_data / "corpora" / "stopwords" / "english").write_text("\n".join(sorted(STOPWORDS)) + "\n")
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "post_install_check_3").touch()
    return {**os.environ, "NLTK_DATA": str(nltk_data), "TA_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO / "src")}


if __name__ == "__main__":
    print(ensure_env(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_VENV))
