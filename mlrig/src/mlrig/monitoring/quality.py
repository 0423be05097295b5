"""The data-quality gate: a batch is checked against the schema its model was trained on
(`Profile`), with pandera, before anything is scored. Every partition is checked; the
violations add up; the first rule broken is reported on one line with its column and rows."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from ..errors import ProjectError

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

    from .profile import Feature, Profile


SHOWN = 10  # categories a message lists


class QualityError(ProjectError):
    """A batch breaks the schema its model was trained on; nothing was scored."""


def _rules(feature: Feature, tolerance: float) -> list[pa.Check]:
    import pandera.pandas as pa
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    rules = [pa.Check(lambda s: is_numeric_dtype(s) and not is_bool_dtype(s), error="numeric")]
    if feature.categories is not None:
        shown = ", ".join(f"{c:g}" for c in feature.categories[:SHOWN])
        more = f", ... {len(feature.categories)} values" if len(feature.categories) > SHOWN else ""
        rules.append(pa.Check.isin(feature.categories, error=f"one of {{{shown}{more}}}"))
        return rules
    margin = tolerance * (feature.maximum - feature.minimum)
    low, high = feature.minimum - margin, feature.maximum + margin
    rules.append(pa.Check.in_range(low, high, error=f"within training's [{low:g}, {high:g}]"))
    if feature.integer:
        rules.append(pa.Check(lambda s: s == s.round(), error="integer"))
    return rules


def schema(profile: Profile, tolerance: float) -> pa.DataFrameSchema:
    """Each feature present, numeric, in its training range (widened by `tolerance` of it) or
    among its categories, integer where it was, missing only where it was; other columns (an
    id, the label) pass through unchecked."""
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {
            feature.name: pa.Column(
                checks=_rules(feature, tolerance), nullable=feature.missing, required=True
            )
            for feature in profile.features
        },
        strict=False,
    )


class Gate:
    """Checks partition after partition; `verdict` raises once for everything found."""

    def __init__(self, profile: Profile, tolerance: float, source: str) -> None:
        self.schema = schema(profile, tolerance)
        self.source = source
        self.broken: Counter[tuple[str, str]] = Counter()  # (column, rule) -> rows

    def check(self, partition: pd.DataFrame) -> None:
        import pandera.errors

        try:
            self.schema.validate(partition, lazy=True)
        except pandera.errors.SchemaErrors as errors:
            cases = errors.failure_cases
            for (column, rule), rows in cases.groupby(["column", "check"], dropna=False):
                if rule == "column_in_dataframe":  # the missing column is the failure case
                    for missing in rows["failure_case"]:
                        self.broken[(str(missing), "present")] += len(partition)
                    continue
                # A check of the whole column (numeric) breaks in every row.
                counted = rows["index"].nunique() if rows["index"].notna().any() else len(partition)
                self.broken[(str(column), _rule(str(rule)))] += int(counted)

    def verdict(self) -> None:
        if not self.broken:
            return
        # A missing column first, then a column that is not numeric, then the most rows.
        order = {"present": 0, "numeric": 1}
        (column, rule), rows = min(
            self.broken.items(), key=lambda item: (order.get(item[0][1], 2), -item[1])
        )
        others = len(self.broken) - 1
        more = f"; {others} more column/rule pairs broken" if others else ""
        raise QualityError(
            f"{self.source}: column {column!r} breaks the rule {rule!r} in {rows} rows{more}. "
            "Nothing was scored: fix the batch, or retrain on data like it."
        )


def _rule(check: str) -> str:
    """pandera's name for a broken check, in the gate's words."""
    return {
        "not_nullable": "not missing (training had no gaps)",
    }.get(check, check)
