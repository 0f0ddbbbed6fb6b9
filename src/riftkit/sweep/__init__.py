"""Multi-seed studies: a sweep file (spec), resumable runs (runner), the collected table and figures (collect)."""

from .spec import MethodSpec, RunPlan, SweepSpec, attack_folder_name, load_sweep

__all__ = ["MethodSpec", "RunPlan", "SweepSpec", "attack_folder_name", "load_sweep"]
