"""The command line of a project: one table of commands, each a handler and its arguments.

A project's `cli.py` calls `main(PROJECT)`; its own commands (`Project.commands`) join the
table. A handler imports the heavy stack its command needs (MLflow, the model libraries,
plotting), so `check`, `data` and `--help` start in a fraction of a second, and worker
processes that a compute backend starts from `train` (they import the main module again) hold
only what they use.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import environment
from .access import ROLES
from .commands import Command, one_line, run_command

if TYPE_CHECKING:
    from .config import Config
    from .project import Project
    from .tracking.store import Tracking

DRIFTED = 3  # `score`'s exit status on a drift breach (predictions written); 2: it failed


def _connected(project: Project) -> tuple[Config, Tracking]:
    """params.yaml, and the connection to the project's tracking store (checked)."""
    from .tracking.store import Tracking

    cfg = project.load_params()
    return cfg, Tracking.connect(cfg, project.root)


def _model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="registered model name (default: registry.model_name)")


def _name(cfg: Config, options: argparse.Namespace) -> str:
    """The project's registered model (`--model`, when given, must name it)."""
    from .registry import check_model

    return check_model(cfg, options.model or cfg.registry.model_name)


def _train(project: Project, args: list[str]) -> int:
    from . import job

    return job.main(project, args)


def _data(project: Project, options: argparse.Namespace) -> int:
    from .data import fetch

    cfg = project.composed(options.overrides) if options.overrides else project.load_params()
    print(fetch(project, cfg.data))
    return 0


def _check(project: Project, options: argparse.Namespace) -> int:
    from . import inputs

    composing = options.conf or options.overrides
    print(inputs.check_inputs(project, options.overrides if composing else None))
    return 0


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides, sweeps too (default: params.yaml as it is)"
    )
    parser.add_argument("--conf", action="store_true", help="compose conf/ even with no overrides")


def _init_tracking(project: Project, options: argparse.Namespace) -> int:
    from .registry import authenticated, create_lock, lock_name

    cfg, tracking = _connected(project)
    experiment_id = tracking.ensure_experiment()
    print(f"Experiment {cfg.tracking.experiment_name!r} ready (id {experiment_id}).")
    lock = lock_name(cfg.registry.model_name)
    if authenticated(tracking):
        print(f"Promotion lock {lock!r}: an administrator's `access` creates it.")
    else:
        create_lock(tracking.client, cfg.registry.model_name)
        print(f"Promotion lock {lock!r} ready.")
    return 0


def _doctor(project: Project, options: argparse.Namespace) -> int:
    from . import doctor

    checks = doctor.diagnose(project, project.load_params())
    print("\n".join(map(str, checks)))
    return 0 if all(check.ok for check in checks) else 1


def _sync(project: Project, options: argparse.Namespace) -> int:
    from .tracking.journal import abandon, sync

    _, tracking = _connected(project)
    if options.abandon:
        print(abandon(tracking, options.abandon))
        return 0
    lines, complete = sync(project, tracking)
    print("\n".join(lines) if lines else "Nothing to sync.")
    return 0 if complete else 1


def _mlflow_run(project: Project, args: list[str]) -> int:
    """`mlflow run . --env-manager local <args>` set up as the project's commands are: its
    .env, the resolved tracking URI (checked first), its experiment, bounded retries."""
    import yaml

    from .config import not_yaml

    try:  # MLflow's own parser would answer with a traceback
        yaml.safe_load((project.root / "MLproject").read_text())
    except yaml.YAMLError as error:
        raise not_yaml(Path("MLproject"), error) from error
    cfg, tracking = _connected(project)
    tracking.ensure_experiment()
    venv = Path(sys.executable).parent  # the entry point's `python`, too
    chosen_by_mlflow = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID")  # this run's, not inherited
    env = {k: v for k, v in os.environ.items() if k not in chosen_by_mlflow}
    env["MLFLOW_TRACKING_URI"] = tracking.uri
    env["MLFLOW_EXPERIMENT_NAME"] = cfg.tracking.experiment_name
    env["PATH"] = f"{venv}{os.pathsep}{os.environ.get('PATH', '')}"
    command = [str(venv / "mlflow"), "run", str(project.root), "--env-manager", "local", *args]
    return subprocess.run(command, cwd=project.root, env=env, check=False).returncode


def _relocate(project: Project, options: argparse.Namespace) -> int:
    from .tracking.store import Tracking

    moved = Tracking.of(project.load_params(), project.root).relocate()
    print("\n".join(moved) if moved else "Every artifact location is inside the project.")
    return 0


def _gc(project: Project, options: argparse.Namespace) -> int:
    from . import retention

    _, tracking = _connected(project)
    print("\n".join(retention.collect(tracking, options.apply)))
    return 0


def _validate(project: Project, options: argparse.Namespace) -> int:
    from . import validation

    cfg, tracking = _connected(project)
    result = validation.validate(
        project, tracking, cfg, _name(cfg, options), options.version, options.mode
    )
    print(result.table())
    return 0 if result.passed or result.mode == "dry-run" else 1


def _promote(project: Project, options: argparse.Namespace) -> int:
    from . import promotion

    cfg, tracking = _connected(project)
    print(promotion.promote(project, tracking, cfg, _name(cfg, options), options.version))
    return 0


def _rollback(project: Project, options: argparse.Namespace) -> int:
    from . import promotion

    cfg, tracking = _connected(project)
    print(promotion.rollback(tracking, cfg, _name(cfg, options)))
    return 0


def _predict(project: Project, options: argparse.Namespace) -> int:
    from . import registry, serving

    cfg, tracking = _connected(project)
    name = _name(cfg, options)
    if not options.model_uri:  # none yet: say how to get one
        registry.resolve(tracking, name, cfg.registry.champion_alias, project.cli)
    uri = options.model_uri or f"models:/{name}@{cfg.registry.champion_alias}"
    rows = serving.predict_csv(project, tracking, uri, options.input, options.output)
    print(f"Scored {rows} rows of {options.input} with {uri} -> {options.output}")
    return 0


def _score(project: Project, options: argparse.Namespace) -> int:
    """Score a batch; a failure or a drift breach is alerted (and a breach, with
    monitor.alert.dispatch, starts retraining) before the command fails with its error."""
    from .monitoring import alerts, scoring
    from .monitoring.drift import DriftError
    from .tracking.store import Tracking

    cfg = project.load_params()
    settings = cfg.monitor.alert
    reference = options.version or cfg.registry.champion_alias
    model = options.model or cfg.registry.model_name
    what = f"{cfg.project}: scoring {options.input} with {model}@{reference}"
    try:
        tracking = Tracking.connect(cfg, project.root)
        outcome = scoring.score(
            project, tracking, cfg, _name(cfg, options), reference, options.input, options.output
        )
        print(outcome)
        outcome.drift.check(options.input)
    except DriftError as error:
        alerts.notify(settings, f"{what}: {error}")
        if settings.dispatch:
            payload = {
                "reason": "drift",
                "model_uri": outcome.uri,
                "batch": options.input,
                "scoring_run": outcome.run_id,
            }
            alerts.dispatch(settings, payload)
        print(f"error: {error}", file=sys.stderr)
        return DRIFTED
    except Exception as error:  # any failure (an unreachable server too); not Ctrl-C
        alerts.notify(settings, f"{what} failed: {one_line(error) or type(error).__name__}")
        raise
    return 0


def _dockerfile(project: Project, options: argparse.Namespace) -> int:
    from . import registry, serving

    cfg, tracking = _connected(project)
    name = _name(cfg, options)
    reference = options.version or cfg.registry.champion_alias
    version = registry.resolve(tracking, name, reference, project.cli).version
    built = serving.dockerfile(project, tracking, name, str(version), options.output)
    print(f"Wrote {built}")
    if options.image_repo:
        image = serving.image_ref(options.image_repo, name, str(version))
        print(f"image={image}")
        if os.environ.get("GITHUB_OUTPUT"):  # a GitHub Actions step output
            with open(os.environ["GITHUB_OUTPUT"], "a") as outputs:
                outputs.write(f"image={image}\n")
    return 0


def _check_serving(project: Project, options: argparse.Namespace) -> int:
    from . import serving

    print(serving.check_answers(Path(options.model_dir)))
    return 0


def _tune(project: Project, options: argparse.Namespace) -> int:
    from . import tune

    summary = tune.tune(
        project,
        options.overrides,
        options.study,
        options.storage,
        options.n_trials,
        options.second_objective,
    )
    print(summary)
    return 0


def _tune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. seed=7")
    parser.add_argument("--n-trials", type=int, help="finished trials to reach (conf/tune.yaml)")
    parser.add_argument("--study", help="study name (default: <project>-<model kind>)")
    parser.add_argument("--storage", help="Optuna storage URL (default: sqlite optuna.db)")
    parser.add_argument(
        "--second-objective",
        metavar="METRIC:DIRECTION",
        help="a second metric to maximize or minimize, e.g. test_logloss:minimize (a Pareto "
        "front; conf/tune.yaml: second_objective); none: one objective",
    )


def _access(project: Project, options: argparse.Namespace) -> int:
    from . import access

    cfg, tracking = _connected(project)
    password = os.environ.get("ACCESS_PASSWORD")
    print("\n".join(access.grant(tracking, cfg, options.user, options.role, password)))
    return 0


def _access_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", required=True)
    parser.add_argument("--role", required=True, choices=sorted(ROLES))


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides, e.g. data=synthetic (default: params.yaml)"
    )


def _sync_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--abandon", metavar="RUN_ID", help="end a spooled run whose job is gone as FAILED"
    )


def _gc_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--apply", action="store_true", help="act (default: say what would happen)")


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    _model(parser)
    parser.add_argument("--version", default="challenger", help="version number or alias")
    parser.add_argument("--mode", choices=["enforce", "dry-run"], help="default: from config")


def _promote_arguments(parser: argparse.ArgumentParser) -> None:
    _model(parser)
    parser.add_argument("--version", required=True, help="version number")


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    _model(parser)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--model-uri", help="default: models:/<model>@champion")


def _score_arguments(parser: argparse.ArgumentParser) -> None:
    _model(parser)
    parser.add_argument(
        "--input", required=True, help="a CSV or Parquet file, a folder, a glob, or an s3:// URL"
    )
    parser.add_argument("--output", required=True, help="a .csv or .parquet file")
    parser.add_argument("--version", help="version number or alias (default: champion)")


def _dockerfile_arguments(parser: argparse.ArgumentParser) -> None:
    _model(parser)
    parser.add_argument("--version", help="version number or alias (default: champion)")
    parser.add_argument("--output", default="build/serving")
    parser.add_argument("--image-repo", help="e.g. ghcr.io/org/repo: print the image reference")


COMMANDS: dict[str, Command] = {
    "train": Command(
        "run the whole pipeline in one MLflow run (Hydra overrides; -m for a sweep)",
        _train,
        raw=True,
    ),
    "tune": Command(
        "an Optuna study over conf/search/<model kind>.yaml, resumable; one run per trial",
        _tune,
        _tune_arguments,
    ),
    "data": Command(
        "dvc pull the raw data, or produce and push it, or generate it", _data, _data_arguments
    ),
    "check": Command(
        "check the configuration and the raw data before DVC writes (make run, make exp)",
        _check,
        _check_arguments,
    ),
    "init-tracking": Command("create the project's MLflow experiment", _init_tracking),
    "doctor": Command(
        "check the library, tracking server, auth, artifacts, DVC remote, git", _doctor
    ),
    "mlflow-run": Command(
        "`mlflow run .` with this venv, in the project's experiment (arguments: its options)",
        _mlflow_run,
        raw=True,
    ),
    "sync": Command(
        "replay runs spooled while the tracking server was down", _sync, _sync_arguments
    ),
    "relocate": Command(
        "after moving or copying the project: point its sqlite store at its own artifacts",
        _relocate,
    ),
    "gc": Command(
        "retention (tracking.retention): delete stale failed runs, purge deleted ones",
        _gc,
        _gc_arguments,
    ),
    "validate": Command(
        "check a version against thresholds and the champion (reads only)",
        _validate,
        _validate_arguments,
    ),
    "promote": Command(
        "validate a version again, under the promotion lock, and move @champion to it",
        _promote,
        _promote_arguments,
    ),
    "rollback": Command("give @champion back to the previous one", _rollback, _model),
    "predict": Command("score a CSV file with a registered model", _predict, _predict_arguments),
    "score": Command(
        "score a batch with the champion: data-quality gate, drift report, alerts (exit 3: "
        "drifted, the predictions written; 2: failed, nothing written)",
        _score,
        _score_arguments,
    ),
    "dockerfile": Command(
        "Docker build context serving a model", _dockerfile, _dockerfile_arguments
    ),
    "check-serving": Command(
        "serve a build context's model on loopback and require probabilities for its example",
        _check_serving,
        lambda parser: parser.add_argument(
            "--model-dir", default="build/serving/model_dir/model", help="the served folder"
        ),
    ),
    "access": Command(
        "an administrator's command: give a user a team role (a new user's password: "
        "ACCESS_PASSWORD)",
        _access,
        _access_arguments,
    ),
}


def commands(project: Project) -> dict[str, Command]:
    """The library's commands and the project's own (which may replace one of the same name)."""
    return {**COMMANDS, **project.commands}


def parser(project: Project) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=project.cli)
    listed = top.add_subparsers(dest="command", required=True, metavar="command")
    for name, command in commands(project).items():
        sub = listed.add_parser(name, help=command.help, description=command.help)
        command.arguments(sub)
        if command.raw:
            sub.add_argument("args", nargs=argparse.REMAINDER, help="passed on as they are")
        sub.set_defaults(run=command.run)
    return top


def main(project: Project, argv: list[str] | None = None) -> int:
    """Run one command of the project's command line (`argv`, default: sys.argv[1:])."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = commands(project).get(args[0]) if args else None
    if command is not None and command.raw:
        handler, given = command.run, args[1:]
    else:
        given = parser(project).parse_args(args)
        handler = given.run

    def run() -> int:
        environment.configure(project.root)
        return handler(project, given)

    return run_command(run)
