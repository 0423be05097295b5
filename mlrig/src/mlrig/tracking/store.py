"""The tracking store and the project's one connection to it (`Tracking`): one URI
(MLFLOW_TRACKING_URI, else the embedded sqlite default), a fast preflight, one client, the
project's experiment, run names, and where the UI shows a run.

Every part of the library that talks to MLflow gets a `Tracking` and asks it for the URI and
the client; nothing reads the URI back from the environment or from MLflow's process state.
MLflow's fluent calls (`mlflow.start_run`, `log_model`, `register_model`) use the tracking and
registry URIs that `open` sets in MLflow's process state (the environment is left as it was);
subprocesses get the URI passed.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from ..config import Config, TrackingConfig
from ..errors import ProjectError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

log = logging.getLogger(__name__)
EXPORTED = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")  # what MLflow's setters export

DEFAULT_EXPERIMENT_ID = "0"  # a store's first experiment: bare `mlflow run .` uses it
# Where `make ui` serves the embedded store.
LOCAL_UI = "http://127.0.0.1:5000"
# Tracking URI schemes MLflow has a store for ("": a local folder).
KNOWN_SCHEMES = frozenset(
    {"", "http", "https", "sqlite", "postgresql", "mysql", "mssql", "file", "databricks"}
)
# Where a sqlite store keeps absolute artifact locations (MLflow has no call to change them).
LOCATIONS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)


class TrackingError(ProjectError):
    """The tracking store cannot be used; the message says what to do."""


def sqlite_path(uri: str) -> Path:
    """The database file of a `sqlite:///` URI (absolute, or relative to the cwd), as
    SQLAlchemy reads it (any sqlite driver; a query string is not part of the path)."""
    from sqlalchemy.engine import make_url

    return Path(make_url(uri).database or "").resolve()


@contextmanager
def sqlite_lock(uri: str) -> Iterator[None]:
    """One process at a time for a sqlite database file (an exclusive lock on a file beside
    it): processes that open a new one at once would each create its tables, and all but one
    fail. Any other URI (a database server, sqlite in memory): no lock."""
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        yield
        return
    from filelock import FileLock  # fcntl's flock on POSIX, LockFileEx on Windows

    database = sqlite_path(uri)
    # Made writable by all: a teammate's lock file in a shared folder still opens.
    with FileLock(database.with_name(f"{database.name}.lock"), mode=0o666):
        yield


def preflight(uri: str, timeout_s: float) -> None:
    """Fail fast, naming the URI, when the tracking store cannot be reached."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        health = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(health, timeout=timeout_s):  # noqa: S310 (http/https only)
                return
        except urllib.error.HTTPError as err:
            if err.code < 500:  # reachable; authentication is checked by the first real call
                return
            reason = f"HTTP {err.code}"
        except (urllib.error.URLError, OSError) as err:
            reason = str(getattr(err, "reason", err))
        raise TrackingError(
            f"MLflow tracking server {uri} is unreachable ({reason}). Start it, fix "
            "MLFLOW_TRACKING_URI, or unset it to use the embedded sqlite store."
        )
    if scheme == "sqlite":
        database = sqlite_path(uri)
        if not database.parent.is_dir() or not os.access(database.parent, os.W_OK):
            raise TrackingError(f"sqlite store {uri}: {database.parent} is not a writable folder.")
        if database.exists() and not os.access(database, os.W_OK):
            raise TrackingError(
                f"sqlite store {database} is read-only: make it writable (chmod u+w) or point "
                "tracking.default_store elsewhere."
            )
    elif scheme.partition("+")[0] not in KNOWN_SCHEMES:
        raise TrackingError(
            f"MLFLOW_TRACKING_URI {uri!r} has the unknown scheme {scheme!r}: use "
            "http(s)://host:port for a tracking server, sqlite:///path or a database URL, or "
            "unset it for the embedded sqlite store."
        )


def _inside(place: str, folder: str) -> bool:
    return place == folder or place.startswith(f"{folder}/")


@dataclass
class Tracking:
    """The project's connection to its tracking store: the URI (`embedded`: the project's
    own sqlite default, as no MLFLOW_TRACKING_URI was set), the tracking settings, the
    project's name (run names) and root (the default store, the spool)."""

    uri: str
    embedded: bool
    settings: TrackingConfig
    project: str
    root: Path

    @classmethod
    def of(cls, cfg: Config, root: Path) -> Tracking:
        """Where the project tracks to, without contacting it: MLFLOW_TRACKING_URI when set,
        else the embedded sqlite store at the project root."""
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        embedded = not uri
        if not uri:
            uri = f"sqlite:///{root / cfg.tracking.default_store}"
        return cls(uri, embedded, cfg.tracking, cfg.project, root)

    @classmethod
    def connect(cls, cfg: Config, root: Path) -> Tracking:
        """The connection, checked (preflight) and given to MLflow's fluent API; a new
        embedded store is created."""
        return cls.of(cfg, root).open()

    def open(self) -> Tracking:
        """Check the store answers, point MLflow's fluent API at it, create or migrate a
        sqlite store; MLflow's HTTP retries (unless set) give up after `http_max_retries`, so
        a run spools instead of waiting minutes on a dead server (`tracking/run.py`)."""
        import mlflow

        origin = (
            "embedded default; set MLFLOW_TRACKING_URI for a team server"
            if self.embedded
            else "from MLFLOW_TRACKING_URI"
        )
        log.info("MLflow tracking URI: %s (%s)", self.uri, origin)
        preflight(self.uri, self.settings.preflight_timeout_s)
        # MLflow reads its HTTP settings from the environment only (each call).
        os.environ.setdefault(
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(self.settings.http_max_retries)
        )
        os.environ.setdefault(
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", str(self.settings.http_backoff_s)
        )
        # Artifacts go through the tracking server, never by presigned URL straight to its
        # object store: clients may not reach that store (in the compose stack it is internal).
        for direction in ("DOWNLOAD", "UPLOAD"):
            os.environ.setdefault(f"MLFLOW_ENABLE_PROXY_MULTIPART_{direction}", "false")
        exported = {name: os.environ.get(name) for name in EXPORTED}
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)  # registrations go to the same store
        # MLflow exports the URIs for subprocesses too: the library passes the URI to those it
        # starts, and a later connection must still see where this one's URI came from.
        for name, value in exported.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self.scheme == "sqlite":
            # MLflow logs a traceback for each database error it then raises: the command
            # reports that error in one line (`commands.run_command`).
            logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
            self._initialise_sqlite()
        return self

    @property
    def scheme(self) -> str:
        return urlparse(self.uri).scheme

    @cached_property
    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    @property
    def spool_root(self) -> Path:
        """Where runs are journaled while the server does not answer."""
        return self.root / self.settings.spool_dir

    def artifact_location(self) -> str | None:
        """Artifacts of a sqlite store live beside the database (never in a cwd `mlruns/`);
        a server decides for itself (None)."""
        if self.scheme != "sqlite":
            return None
        return (sqlite_path(self.uri).parent / self.settings.artifact_dir).as_uri()

    def _initialise_sqlite(self) -> None:
        """Create or migrate a sqlite store in one process at a time.

        A new store is made with the project's artifact folder as its root, and its default
        experiment (id 0, where a bare `mlflow run .` puts its runs) becomes the project's
        experiment. Concurrent jobs on a fresh store would otherwise race to create MLflow's
        tables ("duplicate column name"), so it happens under `sqlite_lock`.
        """
        from mlflow.exceptions import MlflowException
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        from sqlalchemy.exc import DatabaseError

        database = sqlite_path(self.uri)
        with sqlite_lock(self.uri):
            home = self.artifact_location()
            try:
                if not database.exists():
                    SqlAlchemyStore(self.uri, home)  # tables, experiment 0
                self.client.search_experiments(max_results=1)  # opens the store: migrations
            except (DatabaseError, MlflowException) as err:
                reason = str(getattr(err, "orig", None) or err).splitlines()[0]
                raise TrackingError(
                    f"sqlite store {database} cannot be opened as an MLflow store ({reason}): "
                    "move the file aside to start a new store, or point "
                    "tracking.default_store elsewhere."
                ) from err
            # Decided by what the store holds, so a start interrupted before it is finished
            # the next time: experiment 0 made under our artifacts, no project experiment.
            first = self.client.get_experiment(DEFAULT_EXPERIMENT_ID)
            name = self.settings.experiment_name
            ours = home is not None and _inside(first.artifact_location, home)
            if (
                first.name == "Default"
                and ours
                and self.client.get_experiment_by_name(name) is None
            ):
                self.client.rename_experiment(DEFAULT_EXPERIMENT_ID, name)

    def ensure_experiment(self) -> str:
        """Create the project's experiment if needed (artifacts beside a sqlite store)."""
        from mlflow.exceptions import MlflowException

        name = self.settings.experiment_name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return self.client.create_experiment(
                    name, artifact_location=self.artifact_location()
                )
            except MlflowException:  # created concurrently by another job
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"experiment {name!r} is deleted: restore it with "
                f"`mlflow experiments restore --experiment-id {experiment.experiment_id}`."
            )
        return experiment.experiment_id

    def experiment_id(self) -> str | None:
        """The project's experiment, if the store has it."""
        experiment = self.client.get_experiment_by_name(self.settings.experiment_name)
        return experiment.experiment_id if experiment else None

    def next_run_name(self, experiment_id: str, label: str) -> str:
        """`{project}-{label}-{n}` (label: the model kind, or `sweep`), n one more than the
        highest existing in the experiment."""
        prefix = f"{self.project}-{label}"
        runs = self.client.search_runs(
            [experiment_id],
            filter_string=f"attributes.run_name LIKE '{prefix}-%'",
            max_results=5000,
        )
        pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)$")
        numbers = [int(m[1]) for r in runs if (m := pattern.match(r.info.run_name or ""))]
        return f"{prefix}-{max(numbers, default=0) + 1}"

    def unique_run_name(self, experiment_id: str, label: str, run_id: str) -> str:
        """Give the run `<project>-<label>-<n>`, n one more than the highest taken, and keep
        it only if no run that started earlier holds the same name (concurrent jobs pick the
        same n; the later one moves on). Called when a run starts and again when it ends,
        when every run that raced it is visible."""
        current = self.client.get_run(run_id).info.run_name or ""
        while True:
            same = self.client.search_runs(
                [experiment_id],
                filter_string=f"attributes.run_name = '{current}'",
                max_results=100,
            )
            first = min(same, key=lambda r: (r.info.start_time, r.info.run_id), default=None)
            ours = current.startswith(f"{self.project}-{label}-")
            if ours and first and first.info.run_id == run_id:
                return current
            current = self.next_run_name(experiment_id, label)
            self.client.set_tag(run_id, "mlflow.runName", current)

    def check_attached(self, run_id: str) -> None:
        """The run `mlflow run` created must be in the project's experiment, artifacts
        included."""
        run = self.client.get_run(run_id)
        name = self.settings.experiment_name
        found = self.client.get_experiment(run.info.experiment_id).name
        if found != name:
            raise TrackingError(
                f"`mlflow run` created this run in the experiment {found!r}, not the project's "
                f"{name!r}: export MLFLOW_EXPERIMENT_NAME={name} (or pass --experiment-name "
                f"{name})."
            )
        store = self.artifact_location()
        if store and not _inside(run.info.artifact_uri, store):
            raise TrackingError(
                f"run artifacts would go to {run.info.artifact_uri}, outside the project's "
                f"artifact store {store}: the experiment was created by `mlflow run`. Create "
                "experiments with `make setup` first, or delete this one."
            )

    def run_url(self, run: Run) -> str | None:
        """The run's page in the MLflow UI: the server's, or `make ui`'s for a sqlite store."""
        if self.scheme not in ("http", "https", "sqlite"):
            return None
        base = LOCAL_UI if self.scheme == "sqlite" else self.uri.rstrip("/")
        return f"{base}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"

    @contextmanager
    def _database(self) -> Iterator[sqlite3.Connection]:
        """The sqlite store's file, opened as it is (never created), committed and closed."""
        path = sqlite_path(self.uri)
        if not path.exists():
            raise TrackingError(f"no sqlite store at {path}: `make setup` creates it")
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True)) as db, db:
            yield db

    def foreign_locations(self) -> list[str]:
        """Artifact folders of a sqlite store's experiments that lie outside the store's own
        folder: the project was moved or copied (its runs would write to, or read from, the
        old place)."""
        home = self.artifact_location()
        if home is None:
            return []
        with self._database() as db:
            found = [row[0] for row in db.execute("SELECT artifact_location FROM experiments")]
        return [place for place in found if place.startswith("file:") and not _inside(place, home)]

    def relocate(self) -> list[str]:
        """Rewrite the artifact locations a moved or copied project's sqlite store holds, from
        the old `<folder>/<artifact_dir>` to the store's own; one line per old place. Refuses,
        changing nothing, when a location is not under an `<artifact_dir>` folder."""
        home = self.artifact_location()
        if home is None:
            raise TrackingError(
                f"{self.uri} is not a sqlite store: a server keeps its own locations"
            )
        artifact_dir = self.settings.artifact_dir
        # The last `/<artifact_dir>` path segment of each location is where the old store was.
        segment = re.compile(rf"^(.*/{re.escape(artifact_dir)})(/.*)?$")
        foreign = self.foreign_locations()
        unknown = [place for place in foreign if not segment.match(place)]
        if unknown:
            raise TrackingError(
                f"{unknown[0]} is not under a {artifact_dir}/ folder: move those artifacts into "
                "the project's own, or set the experiment's location by hand."
            )
        old_homes = sorted({match[1] for place in foreign if (match := segment.match(place))})
        with self._database() as db:
            for old in old_homes:
                for table, column in LOCATIONS:
                    db.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608
                        f"WHERE substr({column}, 1, ?) = ? "  # the folder itself or below it
                        f"AND (length({column}) = ? OR substr({column}, ?, 1) = '/')",
                        (home, len(old) + 1, len(old), old, len(old), len(old) + 1),
                    )
        return [f"{old} -> {home}" for old in old_homes]
