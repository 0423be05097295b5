"""Fault injection: the tracking server is killed in the middle of a run. The job still ends,
everything it would have logged is spooled, and `sync` replays it into the same run once the
server is back: 0 runs lost, the model registered, nothing left in the spool."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import assert_synced, background, free_port, kill

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.settings import load_params
from {{ cookiecutter.package_name }}.stages.evaluate import evaluate
from {{ cookiecutter.package_name }}.stages.prepare import prepare
from {{ cookiecutter.package_name }}.stages.train import train

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_server_killed_between_dvc_stages(
    spooling: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The train stage logs to the server; it dies; the evaluate stage spools its metrics,
    plots and the registration, and `dvc repro` would carry on."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{spooling.parent / 'server.db'}",
        "--artifacts-destination", str(spooling.parent / "server-artifacts"),
    ]  # fmt: skip
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    cfg = load_params()
    with background(server, f"{uri}/health", {}, spooling.parent) as process:
        prepare(cfg)
        train(cfg)
        kill(process)
    summary = evaluate(cfg)
    assert summary.version is None and summary.spooled == spooling / summary.run_id
    assert "run `make sync`" in str(summary)
    assert json.loads(Path("reports/metrics.json").read_text())["test_auc"] > 0.9

    assert main(["sync"]) == 2  # still down: fails fast, keeps the spool
    assert f"{uri} is unreachable" in capsys.readouterr().err
    assert main(["doctor"]) == 1
    assert "✗ spooled runs: 1 run(s)" in capsys.readouterr().out
    with background(server, f"{uri}/health", {}, spooling.parent):
        assert main(["sync"]) == 0
        assert "registered as version 1" in capsys.readouterr().out
        assert_synced(summary.run_id, spooling)
