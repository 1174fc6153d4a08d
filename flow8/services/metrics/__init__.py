"""Prometheus metrics of one instance, served at `GET /metrics` (see `Metrics`)."""

from ._http import RequestMeter
from ._plays import PlayMeter
from ._service import Metrics
from ._workers import WorkerPeers, merge_expositions

__all__ = ["Metrics", "PlayMeter", "RequestMeter", "WorkerPeers", "merge_expositions"]
