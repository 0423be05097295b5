"""Model kinds: the base a project's kind extends (`ModelSpec`; `SklearnModel` and
`XGBoostModel` for the two native formats), and the loading of registered versions as the
untrusted input they are (`registered`)."""

from .base import Labelled, ModelRefused, ModelSpec, TrainResult

__all__ = ["Labelled", "ModelRefused", "ModelSpec", "TrainResult"]
