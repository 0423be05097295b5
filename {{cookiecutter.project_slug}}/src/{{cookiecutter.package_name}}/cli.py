"""Command line: `train` (Hydra; mlflow run, sweeps), `stage <name>` (dvc.yaml), setup helpers."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import warnings

import hydra
import mlflow
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from . import (
    data,
    doctor,
    pipeline,
    registry,
    retention,
    serving,
    spool,
    tracking,
    validation,
{%- if cookiecutter.ci_workflows == "yes" %}
    webhooks,
{%- endif %}
)
from .config import CONF_DIR, ConfigError, compose, from_container, load_params

# Hydra's own flags; any other `--key value` pair is a parameter `mlflow run` appended.
HYDRA_FLAGS = {
    "--multirun", "--cfg", "--package", "--run", "--help", "--hydra-help", "--version",
    "--info", "--resolve", "--shell-completion", "--config-path", "--config-name",
    "--config-dir", "--experimental-rerun",
}  # fmt: skip
USER_ERRORS = (
    ConfigError,
    data.DataError,
    tracking.TrackingError,
    validation.ValidationError,
    registry.PromotionError,
    serving.InputError,
    spool.SyncError,
    retention.RetentionError,
    FileNotFoundError,
    MlflowException,
)

# MLflow hints that integer columns cannot hold missing values; the 0/1 labels (model output,
# dataset target) never do.
warnings.filterwarnings("ignore", message=r".*Inferred schema contains integer column")


def mlflow_params_to_overrides(args: list[str]) -> list[str]:
    """Turn `--model.max_depth 4` (undeclared MLproject params) into `model.max_depth=4`."""
    overrides: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token.startswith("--") and "=" not in token and token not in HYDRA_FLAGS:
            value = next(tokens, None)
            if value is None:
                raise ConfigError(f"parameter {token} has no value")
            overrides.append(f"{token[2:]}={value}")
        else:
            overrides.append(token)
    return overrides


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def train(cfg: DictConfig) -> float:
    """The whole pipeline in one MLflow run; returns `objective.metric` (what sweeps optimise).

    In a sweep, a job that fails is logged and returns NaN (a failed trial): the sweep goes on.
    """
    log = logging.getLogger(__name__)
    try:
        typed = from_container(cfg)
        summary = pipeline.run_job(typed)
        objective = summary.metrics.get(typed.objective.metric)
        if objective is None:
            raise ConfigError(
                f"objective.metric {typed.objective.metric!r} is not one of the run's metrics: "
                f"{sorted(summary.metrics)}"
            )
    except Exception as err:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            log.exception("job %s failed: %s", HydraConfig.get().job.num, err)
            return math.nan
        if not isinstance(err, USER_ERRORS):
            raise
        log.error("error: %s", err)
        raise SystemExit(2) from err
    print(summary)
    return objective
{%- if cookiecutter.ci_workflows == "yes" %}


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"set {name} in the environment (never on the command line)")
    return value
{%- endif %}


def _run(options: argparse.Namespace) -> int:
    """Run a non-Hydra command; return its exit code."""
    cfg = load_params()
    if options.command == "stage":
        if options.name == "prepare":
            pipeline.stage_prepare(cfg)
        elif options.name == "train":
            pipeline.stage_train(cfg)
        else:
            print(pipeline.stage_evaluate(cfg))
        return 0
    if options.command == "data":
        chosen = from_container(compose(options.overrides)) if options.overrides else cfg
        print(data.fetch(chosen.data))
        return 0
    if options.command == "doctor":
        checks = doctor.diagnose(cfg)
        print("\n".join(map(str, checks)))
        return 0 if all(check.ok for check in checks) else 1
    if options.command == "sync":
        lines = spool.sync(cfg)
        print("\n".join(lines) if lines else "Nothing to sync.")
        return 0
    tracking.connect(cfg)
    name = getattr(options, "model", None) or cfg.registry.model_name
    if options.command == "init-tracking":
        experiment_id = tracking.ensure_experiment(cfg, mlflow.get_tracking_uri())
        print(f"Experiment {cfg.tracking.experiment_name!r} ready (id {experiment_id}).")
    elif options.command == "gc":
        print("\n".join(retention.collect(cfg, mlflow.get_tracking_uri(), options.apply)))
    elif options.command == "validate":
        result = validation.validate(cfg, name, options.version, options.mode)
        print(result.table())
        return 0 if result.passed or result.mode == "dry-run" else 1
    elif options.command == "promote":
        print(registry.promote(cfg, name, options.version))
    elif options.command == "rollback":
        print(registry.rollback(cfg, name))
    elif options.command == "predict":
        uri = options.model_uri or f"models:/{name}@{cfg.registry.champion_alias}"
        rows = serving.predict_csv(uri, options.input, options.output)
        print(f"Scored {rows} rows of {options.input} with {uri} -> {options.output}")
    elif options.command == "dockerfile":
        version = validation.resolve(name, options.version or cfg.registry.champion_alias).version
        print(f"Wrote {serving.dockerfile(f'models:/{name}/{version}', options.output)}")
        if options.image_repo:
            image = serving.image_ref(options.image_repo, name, str(version))
            print(f"image={image}")
            if os.environ.get("GITHUB_OUTPUT"):  # a GitHub Actions step output
                with open(os.environ["GITHUB_OUTPUT"], "a") as outputs:
                    outputs.write(f"image={image}\n")
{%- if cookiecutter.ci_workflows == "yes" %}
    elif options.command == "webhook-register":
        hook = webhooks.register(options.url, _env("MLFLOW_WEBHOOK_SECRET"), options.name)
        print(f"Webhook {options.name!r} ({hook}) -> {options.url}")
    else:
        server = webhooks.make_server(
            options.host,
            options.port,
            _env("MLFLOW_WEBHOOK_SECRET"),
            cfg.registry.alias,
            _env("GITHUB_REPOSITORY"),
            _env("GITHUB_TOKEN"),
            os.environ.get("GITHUB_API_URL", "https://api.github.com"),
        )
        print(f"Receiving MLflow webhooks on http://{options.host}:{options.port}/")
        server.serve_forever()
{%- endif %}
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package_name }}.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("train", help="run the whole pipeline in one MLflow run (Hydra overrides)")
    stage = commands.add_parser("stage", help="run one dvc.yaml stage, reading params.yaml")
    stage.add_argument("name", choices=["prepare", "train", "evaluate"])
    fetch = commands.add_parser(
        "data", help="dvc pull the raw data, or materialise and push it, or generate it"
    )
    fetch.add_argument(
        "overrides", nargs="*", help="Hydra overrides, e.g. data=synthetic (default: params.yaml)"
    )
    commands.add_parser("init-tracking", help="create the project's MLflow experiment")
    commands.add_parser("doctor", help="check tracking server, auth, artifacts, DVC remote, git")
    commands.add_parser("sync", help="replay runs spooled while the tracking server was down")
    gc = commands.add_parser(
        "gc", help="retention (tracking.retention): delete stale failed runs, purge deleted ones"
    )
    gc.add_argument("--apply", action="store_true", help="act (default: say what would happen)")
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model", help="registered model name (default: registry.model_name)")
    check = commands.add_parser(
        "validate", parents=[model], help="check a version against thresholds and the champion"
    )
    check.add_argument("--version", default="challenger", help="version number or alias")
    check.add_argument("--mode", choices=["enforce", "dry-run"], help="default: from config")
    promote = commands.add_parser(
        "promote", parents=[model], help="move @champion to a validated version"
    )
    promote.add_argument("--version", required=True, help="version number")
    commands.add_parser("rollback", parents=[model], help="give @champion back to the previous")
    predict = commands.add_parser("predict", parents=[model], help="score a CSV file")
    predict.add_argument("--input", required=True)
    predict.add_argument("--output", required=True)
    predict.add_argument("--model-uri", help="default: models:/<model>@champion")
    docker = commands.add_parser(
        "dockerfile", parents=[model], help="Docker build context serving a model"
    )
    docker.add_argument("--version", help="version number or alias (default: champion)")
    docker.add_argument("--output", default="build/serving")
    docker.add_argument("--image-repo", help="e.g. ghcr.io/org/repo: print the image reference")
{%- if cookiecutter.ci_workflows == "yes" %}
    hook = commands.add_parser(
        "webhook-register", help="register the registry webhook (secret: MLFLOW_WEBHOOK_SECRET)"
    )
    hook.add_argument("--url", required=True, help="where the receiver listens")
    hook.add_argument("--name", default="{{ cookiecutter.project_slug }}-promotion")
    receive = commands.add_parser(
        "webhook-receive", help="verify MLflow webhooks and dispatch promote.yml on GitHub"
    )
    receive.add_argument("--host", default="127.0.0.1")
    receive.add_argument("--port", type=int, default=8787)
{%- endif %}
    return parser


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "train":
        sys.argv = [f"{sys.argv[0]} train", *mlflow_params_to_overrides(args[1:])]
        train()
        return 0
    options = _parser().parse_args(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return _run(options)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
