"""Operating the champion against real components: a loopback `mlflow server`, the S3
emulator holding a batch, and a loopback HTTP receiver standing in for the alert webhook and
GitHub's API. Scoring a clean batch, a batch that breaks the schema, a drifted batch, an
alert that cannot be delivered; the logged model's test metrics; what the profile and the
batch resolver refuse."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
import yaml
from conftest import GOOD, RAW, produce_raw, tracking
from demo.project import PROJECT
from mlflow import MlflowClient

import mlrig
from mlrig import Project, promotion
from mlrig.config import AlertConfig
from mlrig.data import DataError
from mlrig.job import run_job
from mlrig.monitoring import alerts, batches, drift, quality
from mlrig.monitoring.alerts import redacted
from mlrig.monitoring.output import destination as output_destination
from mlrig.monitoring.profile import PROFILE, Profile, ProfileError
from mlrig.monitoring.scoring import model_id, reference_profile
from mlrig.testing import background, free_port, mlflow_server

MOTO = Path(sys.executable).with_name("moto_server")
S3_KEYS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


class Receiver(ThreadingHTTPServer):
    """Records each POST (path, JSON body) and answers `status`."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.status = 204
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.received]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append((self.path, json.loads(body)))
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("MONITOR_WEBHOOK_URL", f"{server.url}/alert")
    monkeypatch.setenv("GITHUB_API_URL", server.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", "team/project")
    monkeypatch.setenv("GITHUB_TOKEN", "dispatch-only")
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A loopback tracking server whose model is a GOOD champion, and an S3 emulator with a
    bucket: the environment a client needs for both."""
    if not MOTO.exists():
        pytest.skip("moto's server is not installed (moto[server])")
    base = tmp_path_factory.mktemp("served")
    port, s3_port = free_port(), free_port()
    uri, s3 = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{s3_port}"
    moto = [str(MOTO), "-H", "127.0.0.1", "-p", str(s3_port)]
    with (
        background(mlflow_server(base, port), f"{uri}/health", {}, base),
        background(moto, f"{s3}/moto-api/", {}, base),
        pytest.MonkeyPatch.context() as monkeypatch,
    ):
        env = {"MLFLOW_TRACKING_URI": uri, "AWS_ENDPOINT_URL": s3, **S3_KEYS}
        for name, value in {**env, "MLFLOW_DISABLE_TELEMETRY": "true"}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(base)
        produce_raw(base)
        shutil.copy(PROJECT.root / "params.yaml", base / "params.yaml")
        assert mlrig.main(PROJECT, ["init-tracking"]) == 0  # `make setup`: the lock too
        cfg = PROJECT.composed(GOOD)
        summary = run_job(PROJECT, cfg)
        promotion.promote(PROJECT, tracking(cfg), cfg, cfg.registry.model_name, summary.version)
        s3_client().create_bucket(Bucket="batches")
        yield env


def s3_client() -> Any:
    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def scoring(served: dict[str, str], workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The workspace, its client pointed at the served champion; conf/monitor as a team sets
    it for a scheduled job: small partitions, two attempts per alert, retraining on drift."""
    for name, value in served.items():
        monkeypatch.setenv(name, value)
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["monitor"] = {"batch_rows": 128, "alert": {"dispatch": True, "attempts": 2}}
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return workspace


def score(project: Project, source: str, output: str = "out/predictions.parquet") -> int:
    return mlrig.main(project, ["score", "--input", source, "--output", output])


def upload(frame: pd.DataFrame, key: str) -> str:
    s3_client().put_object(Bucket="batches", Key=key, Body=frame.to_parquet(index=False))
    return f"s3://batches/{key}"


def inference_runs() -> list:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(PROJECT.load_params().tracking.experiment_name)
    return client.search_runs(
        [experiment.experiment_id], "tags.`run.kind` = 'inference'", order_by=["start_time DESC"]
    )


def test_a_clean_s3_batch_is_scored_with_probabilities_and_an_inference_run(
    project: Project, scoring: Path, receiver: Receiver
) -> None:
    features = pd.read_csv(RAW).drop(columns=["target"])
    features.insert(0, "id", range(len(features)))
    halves = [features.iloc[:300], features.iloc[300:]]
    source = "s3://batches/daily/2026-12-06/*.parquet"
    for number, half in enumerate(halves):
        upload(half, f"daily/2026-12-06/part-{number}.parquet")
    upload(features.head(5), "daily/2026-12-07/part-0.parquet")  # another day: not matched
    upload(features.head(5), "daily/2026-12-06/late/part-0.parquet")  # `*` stays in a segment

    assert score(project, source) == 0

    scored = pd.read_parquet("out/predictions.parquet")
    assert list(scored.columns) == [
        "id", "prediction", "probability_0", "probability_1",
        "model_name", "model_version", "run_id", "scored_at",
    ]  # fmt: skip
    assert scored["id"].tolist() == list(range(len(features)))  # in the batch's order
    assert scored["prediction"].isin([0, 1]).all()
    assert (scored["probability_0"] + scored["probability_1"]).round(9).eq(1).all()
    assert (scored["prediction"] == (scored["probability_1"] > 0.5)).all()
    client = MlflowClient()
    champion = client.get_model_version_by_alias("demo-model", "champion")
    assert set(scored["model_version"]) == {str(champion.version)}
    (run, *_) = inference_runs()
    assert set(scored["run_id"]) == {run.info.run_id}
    assert scored["scored_at"].nunique() == 1
    assert run.info.status == "FINISHED"
    assert run.data.tags["model.version"] == str(champion.version)
    assert run.data.tags["model.id"] == model_id(champion)
    assert run.data.tags["monitor.drift"] == "none"
    assert run.data.metrics["rows"] == len(features)
    (used,) = run.inputs.dataset_inputs
    assert used.dataset.name == "*.parquet"
    assert json.loads(used.dataset.source)["uri"] == source
    assert json.loads(used.dataset.profile)["num_rows"] == len(features)
    linked = client.get_run(run.info.run_id).inputs.model_inputs
    assert [m.model_id for m in linked] == [model_id(champion)]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "monitor")}
    assert {"monitor/drift.html", "monitor/drift.png"} <= artifacts
    assert receiver.received == []


def test_a_batch_breaking_the_schema_is_refused_before_scoring(
    project: Project, scoring: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = pd.read_csv(RAW)
    batch.loc[200:206, "f2"] = batch["f2"] * 1000  # a unit changed in seven rows
    batch.to_csv("batch.csv", index=False)

    assert score(project, "batch.csv", "out/predictions.csv") == 2

    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "column 'f2'" in error and "training's" in error and "in 7 rows" in error
    assert not Path("out").exists()  # nothing written, not even a partial file
    (run, *_) = inference_runs()
    assert run.info.status == "FAILED"
    assert receiver.paths() == ["/alert"]  # no retraining on a broken batch
    assert "f2" in receiver.received[0][1]["text"]


def test_a_drifted_batch_fails_logs_the_report_and_alerts_once(
    project: Project, scoring: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = pd.read_csv(RAW)
    batch["f3"] = batch["f3"] + 0.75 * batch["f3"].std()  # in range, but shifted
    batch.to_csv("batch.csv", index=False)

    assert score(project, "batch.csv", "out/predictions.csv") == 3  # drifted, not failed

    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "has drifted" in error and "f3 (PSI" in error
    assert len(pd.read_csv("out/predictions.csv")) == len(batch)  # the scores stand
    (run, *_) = inference_runs()
    assert run.info.status == "FINISHED"
    assert run.data.tags["monitor.drift"].startswith("f3")
    assert run.data.metrics["psi_f3"] > 0.2 > run.data.metrics["psi_f0"]
    client = MlflowClient()
    html = Path(client.download_artifacts(run.info.run_id, "monitor/drift.html")).read_text()
    assert "Drifted: f3" in html and "data:image/png;base64," in html
    assert receiver.paths() == ["/alert", "/repos/team/project/dispatches"]
    dispatched = receiver.received[1][1]
    assert dispatched["event_type"] == "retrain"
    assert dispatched["client_payload"]["scoring_run"] == run.info.run_id


def test_an_alert_that_fails_changes_nothing(
    project: Project, scoring: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.status = 500
    pd.read_csv(RAW).drop(columns=["f5"]).to_csv("batch.csv", index=False)

    assert score(project, "batch.csv") == 2

    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "column 'f5'" in error and "'present'" in error
    assert receiver.paths() == ["/alert", "/alert"]  # monitor.alert.attempts, then given up


def test_the_logged_model_shows_its_test_metrics(trained: str) -> None:
    cfg = PROJECT.load_params()
    client = MlflowClient()
    version = client.get_model_version(cfg.registry.model_name, trained)
    model = client.get_logged_model(model_id(version))
    metrics = {m.key: m for m in model.metrics}
    assert metrics["test_auc"].value > 0.8
    assert metrics["test_auc"].dataset_name == "blobs-testing"
    assert metrics["valid_auc"].dataset_name == "blobs-validation"
    (found,) = client.search_logged_models(
        experiment_ids=[model.experiment_id], filter_string="metrics.test_auc > 0.8"
    )
    assert found.model_id == model.model_id
    run = client.get_run(version.run_id)
    assert {i.dataset.name for i in run.inputs.dataset_inputs} >= {"blobs-testing"}
    profile = Path(client.download_artifacts(version.run_id, PROFILE)).read_text()
    assert [f.name for f in Profile.from_json(profile, PROFILE).features] == cfg.data.features


def test_files_that_differ_score_into_one_file(
    project: Project, scoring: Path, receiver: Receiver
) -> None:
    """Files with their columns in another order, a text column empty at first, a file of a
    header only: one Parquet file, each column in one order and of one type."""
    raw = pd.read_csv(RAW).drop(columns=["target"])
    Path("batch").mkdir()
    first = raw.iloc[:300].assign(id=[f"{i:05d}" for i in range(300)], note=None)
    first.to_csv("batch/a.csv", index=False)
    raw.head(0).assign(id=[], note=[]).to_csv("batch/b.csv", index=False)
    rest = raw.iloc[300:].assign(id=[f"{i:05d}" for i in range(300, len(raw))], note="late")
    rest[["note", "id", *raw.columns]].to_csv("batch/c.csv", index=False)

    assert score(project, "batch", "out/predictions.parquet") == 0

    scored = pd.read_parquet("out/predictions.parquet")
    assert list(scored.columns[:2]) == ["id", "note"] and len(scored) == len(raw)
    assert scored["id"].iloc[0] == "00000"  # read as text: its leading zeros kept
    assert scored["note"].isna().sum() == 300 and set(scored["note"].dropna()) == {"late"}

    raw.assign(other=1).to_csv("batch/d.csv", index=False)
    assert score(project, "batch", "out/again.parquet") == 2
    assert not Path("out/again.parquet").exists()


@pytest.mark.parametrize(
    "text",
    ['{"format": 1, "rows": 3}', "[]", '{"format": 2}', '{"format": 1, "rows": 1, '
     '"features": [], "prediction": {"edges": [], "shares": [1]}}', "[" * 100_000 + "]" * 100_000,
     '{"format": 1, "rows": 1e400}'],
)  # fmt: skip
def test_a_profile_from_the_store_is_checked(text: str, trained: str) -> None:
    with pytest.raises(ProfileError):
        Profile.from_json(text, "profile.json")
    cfg = PROJECT.load_params()
    version = MlflowClient().get_model_version(cfg.registry.model_name, trained)
    good = json.loads(reference_profile(tracking(cfg), version).to_json())
    for field, value in (("missing", "false"), ("minimum", 1e9), ("categories", list(range(2000)))):
        tampered = json.loads(json.dumps(good))
        tampered["features"][0][field] = value
        with pytest.raises(ProfileError):
            Profile.from_json(json.dumps(tampered), "profile.json")


def test_what_an_output_may_be(tmp_path: Path) -> None:
    batch_folder = tmp_path / "batch"
    batch_folder.mkdir()
    pd.DataFrame({"x": [1]}).to_csv(batch_folder / "a.csv", index=False)
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder.csv").mkdir()
    folder = batches.resolve(str(batch_folder))
    for output, said in [
        (f"{tmp_path}/out.json", ".csv or .parquet"),
        (f"{tmp_path}/out.csv.gz", ".csv or .parquet"),
        (f"{tmp_path}/folder.csv", "is a folder"),
        (f"{tmp_path}/file/out.csv", "is a file, not a folder"),
        (f"{batch_folder}/predictions.csv", "inside the batch"),
        (f"{batch_folder}/a.csv", "inside the batch"),
        ("s3://bucket/out.csv", "a local .csv"),
    ]:
        with pytest.raises(DataError, match=said):
            output_destination(output, folder)
    single = batches.resolve(str(batch_folder / "a.csv"))
    with pytest.raises(DataError, match="inside the batch"):
        output_destination(str(batch_folder / "a.csv"), single)
    assert output_destination(str(batch_folder / "b.csv"), single).name == "b.csv"


def test_a_batch_that_changes_while_it_is_scored_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    pd.DataFrame({"x": [1]}).to_csv(path, index=False)
    batch = batches.resolve(str(path))
    batch.unchanged()
    pd.DataFrame({"x": [1, 2]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="changed while it was being scored"):
        batch.unchanged()


def test_alerts_keep_their_secrets_and_never_raise(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    said = "tracking server http://scorer:hunter2@127.0.0.1:5000 unreachable"
    assert redacted(said) == "tracking server http://***@127.0.0.1:5000 unreachable"
    settings = AlertConfig(attempts=2, timeout_s=1)
    for url in ("http://hooks.example:443x/services/T0/B0/SECRET", "file:///etc/passwd",
                f"http://127.0.0.1:{free_port()}/services/T0/B0/SECRET"):  # fmt: skip
        monkeypatch.setenv("MONITOR_WEBHOOK_URL", url)
        assert alerts.notify(settings, said) is False
    assert "SECRET" not in caplog.text


def test_drift_metric_names_are_ones_mlflow_takes() -> None:
    drifted = drift.Drift({"f0 (usd)": 0.3, "share%": 0.1, "prediction": 0.0}, 0.2, 0.2)
    assert set(drifted.metrics()) >= {"psi_f0 _usd_", "psi_share_", "psi_prediction"}
    assert drifted.drifted == ["f0 (usd)"]


def test_the_gate_refuses_booleans_and_names_few_categories(trained: str) -> None:
    cfg = PROJECT.load_params()
    version = MlflowClient().get_model_version(cfg.registry.model_name, trained)
    reference = reference_profile(tracking(cfg), version)
    batch = pd.read_csv(RAW).assign(f1=True)
    gate = quality.Gate(reference, cfg.monitor.range_tolerance, "batch.csv")
    gate.check(batch)
    with pytest.raises(quality.QualityError, match="column 'f1' breaks the rule 'numeric'"):
        gate.verdict()


def test_an_s3_batch_names_its_bucket() -> None:
    for source in ("s3://", "s3:///key.csv", "s3://*.csv"):
        with pytest.raises(DataError, match="name the bucket"):
            batches.resolve(source)


def test_what_a_batch_may_name(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "b.csv", index=False)
    assert [Path(i.path).name for i in batches.resolve(str(tmp_path)).files] == ["b.csv"]
    assert [Path(i.path).name for i in batches.resolve(f"{tmp_path}/*.csv").files] == ["b.csv"]
    for source, said in [
        (f"{tmp_path}/a.txt", "neither Parquet"),
        (f"{tmp_path}/*.parquet", "names no file"),
        ("https://example.com/batch.csv", "an s3:// URL"),
    ]:
        with pytest.raises(DataError, match=said):
            batches.resolve(source)
