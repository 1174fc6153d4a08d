"""Prometheus metrics of one instance, served at `GET /metrics` (see `Metrics`)."""

from ._http import RequestMeter
from ._plays import PlayMeter
from ._service import Metrics

__all__ = ["Metrics", "PlayMeter", "RequestMeter"]
