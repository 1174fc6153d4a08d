"""Components: a company's component configs, and the live providers steps use.

See ``_service`` for storage (secret fields encrypted, never answered), resolution (the
step's choice, the company's default, the built-in default) and caching.
"""

from flow8.components import KINDS, CallRecorder, ComponentCall, ComponentError, ProviderEnv

from ._models import Component
from ._service import NAME_MAX, ComponentService
from .exceptions import (
    ComponentConflict,
    ComponentNameTaken,
    ComponentNotFound,
    ComponentServiceError,
    InvalidComponent,
    Problem,
)

__all__ = [
    "KINDS",
    "NAME_MAX",
    "CallRecorder",
    "Component",
    "ComponentCall",
    "ComponentConflict",
    "ComponentError",
    "ComponentNameTaken",
    "ComponentNotFound",
    "ComponentService",
    "ComponentServiceError",
    "InvalidComponent",
    "Problem",
    "ProviderEnv",
]
