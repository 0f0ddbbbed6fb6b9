"""A sweep file: one experiment grid (methods x seeds x hyper-parameter values) and its evaluation.

A sweep YAML holds the whole study, e.g. ``configs/study/sst2.yaml``::

    name: study-sst2
    base: ../cpu/sst2_adv.yaml        # every run starts from this experiment (path relative to this file)
    overrides: {train.log_forgetting_every_steps: 16}   # on every run
    output_dir: runs/study-sst2       # training runs, weights and attack folders
    results_dir: results/study-sst2   # the small files to commit (no weights) and the tables
    seeds: [0, 1, 2]                  # train.seed: initialisation and data order; same index = paired
    baseline: adv_base                # paired differences are taken against this method
    comparisons: [[rift, rift_unconditional]]   # more paired differences (a - b), same pairing
    methods:
      standard: {overrides: {train.method: standard}}
      adv_base: {overrides: {train.method: adv}}
      adv_ptwd:                       # tuned on dev: one run per value on the first seed,
        overrides: {train.method: adv_ptwd}      # the best dev selection metric wins,
        tune: {objective.ptwd_lambda: [0.01, 0.1, 1.0]}   # then every seed runs with the winner
      rift_alpha:                     # an ablation: every value x every seed, one row each
        overrides: {train.method: rift}
        grid: {objective.alpha: [0.01, 0.3, 1.0]}
        attacks: [pwws]               # only these evaluation.attacks entries (default: all)
      rift:
        overrides: {train.method: rift}
        seeds: [0, 1, 2, 3, 4]        # this method's own seeds (default: the sweep's), e.g. more where a
                                      # paired difference is undecided; the baseline needs them too
    evaluation:
      attack: {seed: 0, split: test}  # AttackConfig fields shared by every attack below
      attacks:
        - {attack: pwws, n: null}
        - {attack: genetic, n: 100, genetic: {population: 60, generations: 40}}

Keys of ``overrides``, ``tune`` and ``grid`` are the dotted paths of ``riftkit train``'s
overrides. Each run is identified by its method, its tuned or grid values and its seed
(``rift_alpha@alpha=0.3-seed1``), so a tuning run of the winning value on the first seed is
the final run of that seed, not a second one.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import AttackConfig, ConfigError, ExperimentConfig, apply_overrides, flatten_sections, from_dict, load_config, read_yaml_mapping

SWEEP_KEYS = {"name", "base", "overrides", "output_dir", "results_dir", "seeds", "baseline", "comparisons", "methods", "evaluation"}
METHOD_KEYS = {"overrides", "tune", "grid", "attacks", "seeds"}


@dataclass(frozen=True)
class MethodSpec:
    """One row family of the table: overrides on the base, values tuned on dev, or values swept."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    tune: dict[str, list[Any]] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    # The evaluation.attacks entries (by attack name) this method's final runs get; None: every one. A cheaper
    # protocol for secondary rows (an ablation under PWWS only) without a second sweep, whose rows would lose
    # their pairs with the baseline.
    attacks: tuple[str, ...] | None = None
    # This method's seeds instead of the sweep's (None: the sweep's): more seeds for the rows whose paired
    # difference is still undecided, without re-running every other row on them.
    seeds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class RunPlan:
    """One training run of the sweep (and, when final, its attacks)."""

    run_id: str
    method: str
    params: tuple[tuple[str, Any], ...]  # tuned or grid values, as dotted keys
    seed: int
    overrides: tuple[str, ...]  # key=value strings, applied to the base config in this order
    variant: str  # the table row: method plus its grid values (tuned values are not part of it)
    tuned: tuple[tuple[str, Any], ...] = ()  # the tuned values among params


@dataclass
class SweepSpec:
    path: Path
    name: str
    base: Path
    output_dir: Path
    results_dir: Path | None
    seeds: list[int]
    baseline: str | None
    methods: dict[str, MethodSpec]
    overrides: dict[str, Any]
    attack: dict[str, Any]
    attacks: list[dict[str, Any]]
    comparisons: list[tuple[str, str]] = field(default_factory=list)  # (a, b) variants: a - b, paired as the baseline's

    # -- expansion -------------------------------------------------------------------------

    def tuning_runs(self) -> list[RunPlan]:
        """First-seed runs, one per tuned value (per combination when several keys are tuned)."""
        runs = []
        for method in (m for m in self.methods.values() if m.tune):
            for values in _product(method.tune):
                for grid_values in _product(method.grid):
                    runs.append(self._plan(method, {**grid_values, **values}, self.seeds[0]))
        return runs

    def final_runs(self, winners: dict[str, dict[str, Any]]) -> list[RunPlan]:
        """Every seed of every method and grid value, seed by seed; a tuned method needs its winner (``winners[method]``)."""
        runs = []
        seeds = list(dict.fromkeys([*self.seeds, *(s for m in self.methods.values() for s in m.seeds or ())]))
        for seed in seeds:  # seed-major: a sweep cut short still has every method on its first seeds (pairs)
            for method in self.methods.values():
                if (method.tune and method.name not in winners) or seed not in (method.seeds or self.seeds):
                    continue
                for grid_values in _product(method.grid):
                    runs.append(self._plan(method, {**grid_values, **winners.get(method.name, {})}, seed))
        return runs

    def _plan(self, method: MethodSpec, params: dict[str, Any], seed: int) -> RunPlan:
        grid_part = "".join(f"@{_short(k)}={_fmt(v)}" for k, v in params.items() if k in method.grid)
        tune_part = "".join(f"@{_short(k)}={_fmt(v)}" for k, v in params.items() if k in method.tune)
        run_id = f"{method.name}{grid_part}{tune_part}-seed{seed}"
        items = [*self.overrides.items(), *method.overrides.items(), *params.items(), ("train.seed", seed)]
        overrides = tuple(f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}" for k, v in items)
        tuned = tuple((k, v) for k, v in params.items() if k in method.tune)
        return RunPlan(run_id, method.name, tuple(params.items()), seed, overrides, f"{method.name}{grid_part}", tuned)

    def experiment(self, run: RunPlan) -> ExperimentConfig:
        """The resolved experiment of a run: base, sweep overrides, method, params, seed, output folder."""
        out = self.output_dir / "runs" / run.run_id
        return load_config(self.base, [*run.overrides, f"output_dir={out}", f"name={self.name}/{run.run_id}"])

    def attack_configs(self, method: str | None = None) -> list[AttackConfig]:
        """One AttackConfig per entry of ``evaluation.attacks`` (shared fields below each entry's own);
        with ``method``, only the entries that method's ``attacks:`` names (all when it names none)."""
        configs = []
        chosen = self.methods[method].attacks if method is not None else None
        for i, entry in enumerate(self.attacks):
            if chosen is not None and entry["attack"] not in chosen:
                continue
            values = _merge(self.attack, entry)
            try:
                configs.append(from_dict(AttackConfig, values, f"evaluation.attacks[{i}]"))
            except ConfigError as err:
                raise ConfigError(f"{self.path}: {err}") from None
        return configs


def attack_folder_name(config: AttackConfig) -> str:
    return f"{config.attack}-{config.split}-n{'all' if config.n is None else config.n}-seed{config.seed}"


def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Read and check a sweep YAML; ``overrides`` (``seeds=[0]``, ``evaluation.attack.n=50``) apply to the file.

    Raises ConfigError naming the file and key for an unknown key, a wrong type, an unknown
    baseline, a method with nothing to run, or a base experiment / attack config that does not load.
    """
    path = Path(path)
    raw = apply_overrides(copy.deepcopy(read_yaml_mapping(path)), list(overrides or []))
    where = str(path)
    unknown = sorted(set(raw) - SWEEP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(SWEEP_KEYS)}")
    for key in ("name", "base", "output_dir", "seeds", "methods"):
        if key not in raw:
            raise ConfigError(f"{where}: missing key {key!r}")
    name = _typed(raw["name"], str, f"{where}: name")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"{where}: name {name!r} may hold only letters, digits, '_', '.' and '-'")
    seeds = _seeds(raw["seeds"], f"{where}: seeds")
    methods_raw = _typed(raw["methods"], dict, f"{where}: methods")
    methods = {}
    for name_, body in methods_raw.items():
        body = body or {}
        mwhere = f"{where}: methods.{name_}"
        if not re.fullmatch(r"[A-Za-z0-9_.]+", str(name_)):
            raise ConfigError(f"{mwhere}: a method name may hold only letters, digits, '_' and '.'")
        _typed(body, dict, mwhere)
        bad = sorted(set(body) - METHOD_KEYS)
        if bad:
            raise ConfigError(f"{mwhere}: unknown key(s) {bad}; known keys: {sorted(METHOD_KEYS)}")
        chosen = body.get("attacks")
        if chosen is not None and (not isinstance(chosen, list) or not all(isinstance(a, str) for a in chosen)):
            raise ConfigError(f"{mwhere}.attacks: expected a list of attack names, got {chosen!r}")
        own_seeds = body.get("seeds")
        spec = MethodSpec(str(name_), flatten_sections(_typed(body.get("overrides") or {}, dict, f"{mwhere}.overrides")),
                          _value_lists(body.get("tune") or {}, f"{mwhere}.tune"), _value_lists(body.get("grid") or {}, f"{mwhere}.grid"),
                          None if chosen is None else tuple(chosen),
                          None if own_seeds is None else tuple(_seeds(own_seeds, f"{mwhere}.seeds")))
        if set(spec.tune) & set(spec.grid):
            raise ConfigError(f"{mwhere}: {sorted(set(spec.tune) & set(spec.grid))} both tuned and swept")
        methods[spec.name] = spec
    if not methods:
        raise ConfigError(f"{where}: methods is empty")
    baseline = raw.get("baseline")
    if baseline is not None and baseline not in methods:
        raise ConfigError(f"{where}: baseline {baseline!r} is not one of the methods {sorted(methods)}")
    evaluation = _typed(raw.get("evaluation") or {}, dict, f"{where}: evaluation")
    bad = sorted(set(evaluation) - {"attack", "attacks"})
    if bad:
        raise ConfigError(f"{where}: evaluation: unknown key(s) {bad}; known keys: ['attack', 'attacks']")
    attacks = evaluation.get("attacks") or []
    if not isinstance(attacks, list) or not all(isinstance(a, dict) and "attack" in a for a in attacks):
        raise ConfigError(f"{where}: evaluation.attacks must be a list of mappings, each with an 'attack' key")
    for method in methods.values():
        unknown = sorted(set(method.attacks or ()) - {a["attack"] for a in attacks})
        if unknown:
            raise ConfigError(f"{where}: methods.{method.name}.attacks: {unknown} not in evaluation.attacks "
                              f"({sorted({a['attack'] for a in attacks})})")
    spec = SweepSpec(
        path=path, name=name, base=(path.parent / _typed(raw["base"], str, f"{where}: base")).resolve(),
        output_dir=Path(_typed(raw["output_dir"], str, f"{where}: output_dir")),
        results_dir=Path(raw["results_dir"]) if raw.get("results_dir") else None,
        seeds=seeds, baseline=baseline, methods=methods,
        overrides=flatten_sections(_typed(raw.get("overrides") or {}, dict, f"{where}: overrides")),
        attack=_typed(evaluation.get("attack") or {}, dict, f"{where}: evaluation.attack"), attacks=attacks,
    )
    some_winners = {m.name: dict(_product(m.tune)[0]) for m in methods.values() if m.tune}  # any value: to plan every run now
    planned = spec.final_runs(some_winners)
    variants = {r.variant for r in planned}
    for i, pair in enumerate(raw.get("comparisons") or []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair)):
            raise ConfigError(f"{where}: comparisons[{i}]: expected a pair of variant names [a, b], got {pair!r}")
        unknown = sorted(set(pair) - variants)
        if unknown:
            raise ConfigError(f"{where}: comparisons[{i}]: {unknown} not among the sweep's variants {sorted(variants)}")
        spec.comparisons.append((pair[0], pair[1]))
    # Every run's experiment and every attack must load now, not hours into the sweep.
    folders = [attack_folder_name(c) for c in spec.attack_configs()]
    if len(set(folders)) != len(folders):
        raise ConfigError(f"{where}: evaluation.attacks has two entries with the same attack, split, n and seed")
    for run in spec.tuning_runs() + planned:
        try:
            spec.experiment(run)
        except ConfigError as err:
            raise ConfigError(f"{where}: run {run.run_id}: {err}") from None
    return spec


def _seeds(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and not isinstance(s, bool) for s in value) \
            or len(set(value)) != len(value):
        raise ConfigError(f"{where}: expected a non-empty list of distinct integers, got {value!r}")
    return value


def _typed(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: expected a {kind.__name__}, got {value!r}")
    return value


def _value_lists(values: dict, where: str) -> dict[str, list[Any]]:
    _typed(values, dict, where)
    for key, options in values.items():
        if not isinstance(options, list) or not options:
            raise ConfigError(f"{where}.{key}: expected a non-empty list of values, got {options!r}")
    return dict(values)


def _product(values: dict[str, list[Any]]) -> list[dict[str, Any]]:
    combos: list[dict[str, Any]] = [{}]
    for key, options in values.items():
        combos = [{**c, key: v} for c in combos for v in options]
    return combos


def _merge(base: dict, update: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
