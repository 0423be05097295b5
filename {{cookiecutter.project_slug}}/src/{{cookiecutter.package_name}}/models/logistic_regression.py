"""scikit-learn baseline: standardised features + logistic regression, saved with skops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlrig import ModelParams, SklearnModel, check

if TYPE_CHECKING:
    import numpy as np
    from sklearn.pipeline import Pipeline


@dataclass
class LogisticRegressionParams(ModelParams):
    C: float
    max_iter: int
    class_weight: str | None

    def __post_init__(self) -> None:
        check(self.C > 0, "model.C must be > 0")
        check(self.max_iter >= 1, "model.max_iter must be >= 1")
        check(
            self.class_weight in (None, "balanced"), "model.class_weight must be null or 'balanced'"
        )


class LogisticRegression(SklearnModel[LogisticRegressionParams]):
    name = "logistic_regression"
    params = LogisticRegressionParams

    def estimator(self, params: LogisticRegressionParams, seed: int) -> Pipeline:
        from sklearn import linear_model
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        classifier = linear_model.LogisticRegression(
            C=params.C, max_iter=params.max_iter, class_weight=params.class_weight,
            random_state=seed,
        )  # fmt: skip
        return make_pipeline(StandardScaler(), classifier)

    def importance(self, model: Pipeline) -> np.ndarray:
        import numpy as np

        return np.abs(np.ravel(model.steps[-1][1].coef_))


SPEC = LogisticRegression()
