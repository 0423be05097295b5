"""The reference a model is monitored against, derived from its training split when it is
trained and logged with it (`PROFILE`): each feature's schema -- integer or not, its range,
whether it may be missing, its categories -- and its distribution over quantile bins, and the
distribution of the model's probability of class 1 on the held-out test split.

A profile read back from the tracking store is checked like any file from it: JSON of the
expected shape, or refused.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ProjectError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..config import MonitorConfig

PROFILE = "monitor/profile.json"  # the artifact of the training run
FORMAT = 1
MAX_CATEGORIES = 1000  # what a profile read back may list for one feature


class ProfileError(ProjectError):
    """The training run of a model version has no usable profile."""


@dataclass(frozen=True)
class Bins:
    """A distribution: the inner edges of its bins and the share of values in each."""

    edges: list[float]
    shares: list[float]

    def counts(self, values: np.ndarray) -> np.ndarray:
        """How many of `values` (missing ones left out) fall in each bin."""
        import numpy as np

        missing = np.isnan(values)
        if missing.any():
            values = values[~missing]
        indices = np.searchsorted(np.asarray(self.edges), values, side="right")
        return np.bincount(indices, minlength=len(self.edges) + 1)


@dataclass(frozen=True)
class Feature:
    name: str
    integer: bool
    minimum: float
    maximum: float
    missing: bool  # the training split had gaps in it: they are allowed
    categories: list[float] | None  # an integer feature of few values: those values
    bins: Bins


@dataclass(frozen=True)
class Profile:
    rows: int  # of the training split
    features: list[Feature]
    prediction: Bins  # of the probability of class 1 on the test split

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=1)

    @classmethod
    def from_json(cls, text: str, where: str) -> Profile:
        try:
            raw = json.loads(text)
            if raw.pop("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT}")
            features = [_feature(item) for item in raw["features"]]
            profile = cls(int(raw["rows"]), features, _bins(raw["prediction"]))
        except (
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            OverflowError,
            RecursionError,
        ) as error:
            raise ProfileError(f"{where} is not a profile this library wrote ({error})") from error
        if not profile.features:
            raise ProfileError(f"{where} lists no features")
        return profile


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    if not math.isfinite(float(value)):
        raise ValueError(f"{value!r} is not a finite number")
    return float(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _bins(raw: dict[str, Any]) -> Bins:
    edges = [_number(edge) for edge in raw["edges"]]
    shares = [_number(share) for share in raw["shares"]]
    if len(shares) != len(edges) + 1 or edges != sorted(edges):
        raise ValueError("bins need sorted edges and one share more than edges")
    return Bins(edges, shares)


def _feature(raw: dict[str, Any]) -> Feature:
    categories = raw["categories"]
    if categories is not None and not 0 < len(categories) <= MAX_CATEGORIES:
        raise ValueError(f"a feature's categories number 1 to {MAX_CATEGORIES}")
    feature = Feature(
        name=str(raw["name"]),
        integer=_flag(raw["integer"]),
        minimum=_number(raw["minimum"]),
        maximum=_number(raw["maximum"]),
        missing=_flag(raw["missing"]),
        categories=None if categories is None else [_number(c) for c in categories],
        bins=_bins(raw["bins"]),
    )
    if feature.minimum > feature.maximum:
        raise ValueError(f"{feature.name}: minimum above maximum")
    return feature


def distribution(values: np.ndarray, bins: int) -> Bins:
    """Bins at the quantiles of `values` (fewer where values repeat), and their shares."""
    import numpy as np

    present = values[~np.isnan(values)]
    if present.size == 0:
        return Bins([], [1.0])
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    frame = Bins([float(edge) for edge in edges], [])
    counts = frame.counts(present)
    return Bins(frame.edges, [float(c) for c in counts / counts.sum()])


def _categorical(values: np.ndarray, limit: int) -> list[float] | None:
    import numpy as np

    present = np.unique(values[~np.isnan(values)])
    return [float(v) for v in present] if 0 < present.size <= limit else None


def derive(
    reference: pd.DataFrame, features: list[str], scores: np.ndarray, settings: MonitorConfig
) -> Profile:
    """The profile of the training split `reference` (its `features`) and of the test split's
    scores."""
    import numpy as np
    from pandas.api.types import is_integer_dtype

    described = []
    for name in features:
        column = reference[name]
        values = column.to_numpy(dtype=float, na_value=np.nan)
        present = values[~np.isnan(values)]
        integer = is_integer_dtype(column.dtype) or bool(
            present.size and np.all(present == np.round(present))
        )
        categories = _categorical(values, settings.max_categories) if integer else None
        if categories is not None:  # one bin per category: edges between them
            edges = [(a + b) / 2 for a, b in itertools.pairwise(categories)]
            counts = Bins(edges, []).counts(present)
            bins = Bins(edges, [float(c) for c in counts / counts.sum()])
        else:
            bins = distribution(values, settings.bins)
        described.append(
            Feature(
                name=name,
                integer=integer,
                minimum=float(present.min()) if present.size else 0.0,
                maximum=float(present.max()) if present.size else 0.0,
                missing=bool(present.size < values.size),
                categories=categories,
                bins=bins,
            )
        )
    prediction = distribution(np.asarray(scores, dtype=float), settings.bins)
    return Profile(len(reference), described, prediction)
