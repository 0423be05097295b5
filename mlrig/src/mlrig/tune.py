"""`tune`: an Optuna study over the model's search space (conf/search/<model kind>.yaml).

The study is stored (the project's conf/tune.yaml: a sqlite file in its root by default), so running
`tune` again continues it up to `n_trials` finished trials, and several `tune` processes on one
storage share it. Each trial composes conf/ with the sampled values (Hydra's compose API) and
runs one tracked job, nested under the study's one parent run. With a second objective the
study is multi-objective: its result is a Pareto front (tagged on the parent and on the front's
runs); the model registered is the front's best by `objective.metric`.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

from . import pruning
from .config import Config, ConfigError, ObjectiveConfig, check
from .errors import ProjectError
from .job import run_job
from .sweep import record_best
from .tracking.lineage import lineage_tags
from .tracking.run import nested_under
from .tracking.store import Tracking, sqlite_lock

if TYPE_CHECKING:
    import optuna

    from .project import Project

log = logging.getLogger(__name__)
STUDY_TAG = "optuna.study"
FRONT_TAG = "optuna.pareto_front"  # "true" on the runs of a multi-objective study's front
FRONT_RUNS_TAG = "pareto_run_ids"  # on the parent: the front's runs, comma-separated
SHOWN_FRONT = 100  # at most this many run IDs in the parent's tag


@dataclass(frozen=True)
class Study:
    name: str
    storage: str
    n_trials: int  # finished trials: completed or pruned
    # Optuna's median pruner: after `startup_trials` finished trials, a trial whose validation
    # metric after a round (from `warmup_rounds` on) is worse than the median of the earlier
    # trials' at that round stops there. None: no pruning.
    pruning: dict[str, int] | None = None
    # A second metric of the job's (e.g. test_logloss) and its direction: a multi-objective
    # study (no pruning: Optuna prunes single-objective studies only). None: one objective.
    second: ObjectiveConfig | None = None


def second_objective(value: object, primary: str) -> ObjectiveConfig | None:
    """tune.yaml's `second_objective` ({metric, direction} or null), or the command line's
    METRIC:DIRECTION (`none` for one objective)."""
    if isinstance(value, str):
        if value == "none":
            return None
        metric, _, direction = value.partition(":")
        value = {"metric": metric, "direction": direction}
    if value is None:
        return None
    check(
        isinstance(value, dict) and set(value) == {"metric", "direction"},
        "tune: second_objective is null, {metric: NAME, direction: maximize|minimize}, or "
        "METRIC:DIRECTION on the command line",
    )
    assert isinstance(value, dict)
    check(
        value["direction"] in ("maximize", "minimize"),
        f"tune: second objective: direction maximize or minimize, not {value['direction']!r}",
    )
    second = ObjectiveConfig(metric=str(value["metric"]), direction=str(value["direction"]))
    check(bool(second.metric), "tune: second_objective needs a metric")
    check(second.metric != primary, f"tune: the second objective must not be {primary} again")
    return second


def study_options(
    project: Project,
    cfg: Config,
    name: str | None,
    storage: str | None,
    n_trials: int | None,
    second: str | None = None,
) -> Study:
    """conf/tune.yaml, with the command line's values first."""
    options = OmegaConf.to_container(OmegaConf.load(project.conf_dir / "tune.yaml"))
    assert isinstance(options, dict)
    kind = project.spec(cfg.model).name
    pruning = options.get("pruning")
    check(
        pruning is None
        or (isinstance(pruning, dict) and set(pruning) == {"startup_trials", "warmup_rounds"}),
        "tune.yaml: pruning is null, or {startup_trials: N, warmup_rounds: N}",
    )
    objective = second_objective(
        options.get("second_objective") if second is None else second, cfg.objective.metric
    )
    default_name = f"{cfg.project}-{kind}" + (f"-{objective.metric}" if objective else "")
    study = Study(
        name=name or options.get("study_name") or default_name,
        storage=storage or options.get("storage") or f"sqlite:///{project.root / 'optuna.db'}",
        n_trials=int(options.get("n_trials") or 0) if n_trials is None else n_trials,
        pruning={key: int(value) for key, value in pruning.items()} if pruning else None,
        second=objective,
    )
    check(study.n_trials >= 1, "tune: n_trials must be >= 1")
    return study


def search_space(project: Project, cfg: Config) -> dict[str, dict[str, Any]]:
    """conf/search/<model kind>.yaml: parameter -> {int|float|choice: ..., log: bool}."""
    kind = project.spec(cfg.model).name
    path = project.conf_dir / "search" / f"{kind}.yaml"
    if not path.exists():
        raise ConfigError(f"{path} is missing: write the search space of model={kind} there")
    space = OmegaConf.to_container(OmegaConf.load(path))
    assert isinstance(space, dict)
    for key, entry in space.items():
        kinds = {"int", "float", "choice"} & set(entry or {})
        check(len(kinds) == 1, f"{path.name}: {key} needs one of int, float or choice")
    return {str(key): dict(entry) for key, entry in space.items()}


def suggest(trial: optuna.Trial, key: str, entry: dict[str, Any]) -> Any:
    if "choice" in entry:
        return trial.suggest_categorical(key, entry["choice"])
    if "int" in entry:
        low, high = entry["int"]
        return trial.suggest_int(key, low, high, log=bool(entry.get("log")))
    low, high = entry["float"]
    return trial.suggest_float(key, low, high, log=bool(entry.get("log")))


def override(key: str, value: Any) -> str:
    """A Hydra override for a sampled value (None is `null`)."""
    return f"{key}={'null' if value is None else value}"


def study_parent(tracking: Tracking, cfg: Config, study: Study) -> str:
    """The study's parent run, shared by every `tune` process on the study: the oldest run
    tagged with its name (a process that created a second one in a race deletes it)."""
    client = tracking.client
    experiment_id = tracking.ensure_experiment()
    query = f"tags.`{STUDY_TAG}` = '{study.name}'"

    def oldest() -> str | None:
        found = client.search_runs([experiment_id], query, max_results=1000)
        first = min(found, key=lambda r: (r.info.start_time, r.info.run_id), default=None)
        return first.info.run_id if first else None

    existing = oldest()
    if existing:
        return existing
    tags = {**lineage_tags(cfg), STUDY_TAG: study.name, "sweep.sweeper": "optuna"}
    name = tracking.next_run_name(experiment_id, "tune")
    mine = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    first = oldest() or mine
    if first != mine:
        client.delete_run(mine)
    return first


def open_study(cfg: Config, study: Study) -> optuna.Study:
    """The study, created if new. `tune` processes that start on a new storage at once would
    each create its tables ("table studies already exists"): on sqlite they take turns; on a
    database server, the one that lost the race opens the tables the other made."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    directions = [cfg.objective.direction, *([study.second.direction] if study.second else [])]
    names = [cfg.objective.metric, *([study.second.metric] if study.second else [])]
    if study.pruning and study.second:
        log.info("no pruning: a study of two objectives is not pruned (Optuna prunes one)")
    elif study.pruning:
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=study.pruning["startup_trials"],
            n_warmup_steps=study.pruning["warmup_rounds"],
        )

    def create() -> optuna.Study:
        opened = optuna.create_study(
            study_name=study.name,
            storage=study.storage,
            directions=directions,
            sampler=optuna.samplers.TPESampler(seed=cfg.seed),
            pruner=pruner,
            load_if_exists=True,
        )
        stored = [direction.name.lower() for direction in opened.directions]
        if opened.metric_names is None and stored == directions:  # new, or from mlrig 0.1
            with warnings.catch_warnings():  # set_metric_names is "experimental" in Optuna 4
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                opened.set_metric_names(names)
        elif (opened.metric_names, stored) != (names, directions):  # made for other objectives
            raise ConfigError(
                f"study {study.name!r} in {study.storage} optimises "
                f"{described(opened.metric_names or ['?'] * len(stored), stored)}, not "
                f"{described(names, directions)}: name another study (--study), or give it its "
                "objectives"
            )
        return opened

    with sqlite_lock(study.storage):
        try:
            return create()
        except SQLAlchemyError as err:
            log.warning("study storage busy (%s): opening it again", str(err).splitlines()[0])
            return create()


def described(names: list[str], directions: list[str]) -> str:
    pairs = zip(names, directions, strict=True)
    return ", ".join(f"{name} ({direction})" for name, direction in pairs)


class StopWhenFailing:
    """A study callback: stop once this process saw `limit` trials fail (trials that always
    fail, e.g. a search space the model refuses, would otherwise run forever: only finished
    trials count towards n_trials)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.failed, self.stopped = limit, 0, False

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        from optuna.trial import TrialState

        if trial.state == TrialState.FAIL:
            self.failed += 1
            if self.failed >= self.limit:
                self.stopped = True
                study.stop()


class QuietInterrupt(logging.Filter):
    """Optuna logs a trial stopped by Ctrl-C as failed, with the traceback, then its value:
    the command says it was interrupted, in one line (the trial stays FAIL, so a later `tune`
    runs it again; its MLflow run ends KILLED)."""

    def __init__(self) -> None:
        super().__init__()
        self.interrupted = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            self.interrupted = True
            return False
        return not (self.interrupted and "failed with value" in record.getMessage())


def tune(
    project: Project,
    overrides: list[str],
    name: str | None = None,
    storage: str | None = None,
    n_trials: int | None = None,
    second: str | None = None,
) -> str:
    """Run the study until it has `n_trials` finished trials; return a summary."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    cfg = project.composed(overrides)
    study_conf = study_options(project, cfg, name, storage, n_trials, second)
    space = search_space(project, cfg)
    tracking = Tracking.connect(cfg, project.root)
    study = open_study(cfg, study_conf)
    parent = study_parent(tracking, cfg, study_conf)

    # The validation metric a round reports: the objective's, without its split (test_auc: auc).
    # A multi-objective trial reports none (Optuna cannot prune it).
    metric = "" if study_conf.second else cfg.objective.metric.split("_", 1)[-1]
    unknown: list[str] = []  # the second objective's metric, when the job does not log it

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        import mlflow
        import optuna

        sampled = [override(key, suggest(trial, key, entry)) for key, entry in space.items()]
        try:
            with pruning.active(trial, metric):
                cfg_trial = project.composed([*overrides, *sampled])
                summary = run_job(project, cfg_trial, register=False)
        except optuna.TrialPruned as pruned:
            stopped = mlflow.last_active_run()
            if stopped is not None:  # its run ended FAILED: say why
                tracking.client.set_tag(stopped.info.run_id, pruning.PRUNED_TAG, "PRUNED")
            log.info("trial %d %s", trial.number, pruned)
            raise
        trial.set_user_attr("mlflow_run_id", summary.run_id)
        value = summary.metrics[cfg.objective.metric]
        if study_conf.second is None:
            return value
        if study_conf.second.metric not in summary.metrics:
            unknown.append(", ".join(sorted(summary.metrics)))
            trial.study.stop()  # the next trials would fail alike
            raise ConfigError(f"no metric {study_conf.second.metric}")
        return value, summary.metrics[study_conf.second.metric]

    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    failing = StopWhenFailing(study_conf.n_trials)
    done = len(study.get_trials(deepcopy=False, states=finished))
    log.info("study %s: %d of %d trials finished", study_conf.name, done, study_conf.n_trials)
    if done < study_conf.n_trials:
        optuna_log = logging.getLogger("optuna.study._optimize")
        quiet = QuietInterrupt()
        optuna_log.addFilter(quiet)
        try:
            with nested_under(parent):
                study.optimize(
                    objective,
                    callbacks=[MaxTrialsCallback(study_conf.n_trials, states=finished), failing],
                    catch=(Exception,),
                )
        finally:
            optuna_log.removeFilter(quiet)
    if (unknown or failing.stopped) and not study.get_trials(deepcopy=False, states=finished):
        tracking.client.set_terminated(parent, "FAILED")  # no trial to record
    if unknown:
        raise ConfigError(
            f"tune: second objective {study_conf.second.metric if study_conf.second else ''}"
            f" is not a metric the job logs; it logs {unknown[0]}"
        )
    if failing.stopped:
        raise ProjectError(
            f"tune: {failing.failed} trials of this process failed, as many as n_trials "
            f"({study_conf.n_trials}): the study stopped; the log above says why"
        )
    summary = record_best(tracking, cfg, parent)
    front = record_front(tracking, study, parent) if study_conf.second else ""
    registered = register_best(tracking, cfg, parent)
    return f"{summary} (study {study_conf.name} in {study_conf.storage}){front}{registered}"


def record_front(tracking: Tracking, study: optuna.Study, parent: str) -> str:
    """Tag the runs of a multi-objective study's Pareto front, and the parent with them."""
    from optuna.trial import TrialState

    runs = [t.user_attrs["mlflow_run_id"] for t in study.best_trials
            if "mlflow_run_id" in t.user_attrs]  # fmt: skip
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:  # a resumed study's front moves: tagged both ways
            tracking.client.set_tag(run_id, FRONT_TAG, "true" if run_id in runs else "false")
    tracking.client.set_tag(parent, FRONT_RUNS_TAG, ",".join(runs[:SHOWN_FRONT]))
    return f"; Pareto front: {len(runs)} trial(s), tagged {FRONT_TAG}"


def register_best(tracking: Tracking, cfg: Config, parent: str) -> str:
    """Register the model of the study's best trial as `registry.alias` (once: a study whose
    best did not change registers nothing new); its trials register nothing themselves."""
    from .registry import register

    client = tracking.client
    best = client.get_run(parent).data.tags.get("best_run_id")
    logged = client.get_run(best).outputs.model_outputs if best else []
    if not best or not logged:
        return ""
    name, alias = cfg.registry.model_name, cfg.registry.alias
    version = register(tracking, f"models:/{logged[-1].model_id}", name, alias, best)
    return f"; its model: models:/{name}/{version.version} (@{alias})"
