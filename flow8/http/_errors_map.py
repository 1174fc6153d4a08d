"""Domain errors from the services, translated to API errors at the HTTP boundary."""

from __future__ import annotations

from flow8.logs import get_logger
from flow8.services import channels as chan
from flow8.services import components as comp
from flow8.services import credentials as cred
from flow8.services import identity as ident
from flow8.services.exceptions import (
    EngineError,
    InvalidDocument,
    StoreClosed,
    StoreError,
    StoreUnavailable,
)
from flow8.services.flows import FlowNotFound, FlowValidationError
from flow8.services.kv import KvError
from flow8.services.plays import (
    FlowDisabled,
    IdempotencyKeyReused,
    InvalidInput,
    PlayLimitReached,
    PlayNotFound,
    PlayStateError,
    StartTimedOut,
)

from .exceptions import (
    ApiError,
    BadGateway,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthenticated,
    ValidationFailed,
)

log = get_logger("flow8.http")


def _internal(error: Exception) -> ApiError:
    """An error no mapping knows: logged with its traceback for the operator; the client
    gets a generic 500, never the error's text (it may carry data)."""
    log.error("http.unmapped_error", error=type(error).__name__, exc_info=error)
    return ApiError("internal server error")


def from_identity(error: ident.IdentityError) -> ApiError:
    if isinstance(error, ident.InvalidInput):
        return ValidationFailed([{"field": error.field, "message": error.message}])
    if isinstance(error, ident.RateLimited):
        return TooManyRequests(str(error), retry_after=error.retry_after, code=error.code)
    if isinstance(error, ident.InvalidCredentials | ident.NotAuthenticated):
        return Unauthenticated(str(error), code=error.code)
    if isinstance(error, ident.PermissionDenied):
        return Forbidden(str(error), code="PERMISSION_DENIED")
    if isinstance(error, ident.NotFound):
        return NotFound(str(error), code=error.code)
    if isinstance(error, ident.AlreadyInstalled | ident.Conflict):
        return Conflict(str(error), code=error.code)
    return _internal(error)


def from_engine(error: Exception) -> ApiError:
    if isinstance(error, FlowValidationError):
        fields = [{"field": p.path or "(body)", "message": p.message} for p in error.problems]
        return ValidationFailed(fields, message=str(error)[:2000])
    if isinstance(error, FlowNotFound):
        return NotFound("flow not found", code="FLOW_NOT_FOUND")
    if isinstance(error, FlowDisabled):
        return Conflict(f"{error}; or run it anyway with ?force=true", code="FLOW_DISABLED")
    if isinstance(error, PlayNotFound):
        return NotFound("play not found", code="PLAY_NOT_FOUND")
    if isinstance(error, PlayStateError):
        return Conflict(str(error), code="PLAY_STATE_CONFLICT")
    if isinstance(error, InvalidInput):  # the play input fails the flow's inputSchema
        return ValidationFailed([{"field": "(body)", "message": str(error)}], message=str(error))
    if isinstance(error, KvError):
        return ValidationFailed([{"field": "(body)", "message": str(error)}], message=str(error))
    if isinstance(error, IdempotencyKeyReused):  # Stripe's answer: the request is at fault
        reused = ValidationFailed(
            [{"field": "Idempotency-Key", "message": str(error)}], message=str(error)
        )
        reused.code = "IDEMPOTENCY_KEY_REUSED"
        return reused
    if isinstance(error, PlayLimitReached):
        return TooManyRequests(str(error), retry_after=error.retry_after or 1.0, code=error.code)
    if isinstance(error, StartTimedOut):  # nothing was stored: the client may retry
        return ServiceUnavailable("starting the play timed out; retry")
    return _internal(error)


def from_store(error: StoreError) -> ApiError:
    """Store refusals a client can cause (a value the store cannot hold) are the client's
    problem; an unreachable store is a temporary outage. Messages name the problem only."""
    if isinstance(error, InvalidDocument) or isinstance(error.__cause__, InvalidDocument):
        message = f"value cannot be stored: {str(error)[:200]}"
        return ValidationFailed([{"field": "(body)", "message": message}], message=message)
    if isinstance(error, StoreUnavailable | StoreClosed):
        return ServiceUnavailable("the database is unavailable; retry shortly")
    return _internal(error)


def from_credentials(error: cred.CredentialError) -> ApiError:
    """Problems name fields only: the service never puts a secret value in an error."""
    if isinstance(error, cred.InvalidCredential):
        fields = [{"field": p.field, "message": p.message} for p in error.problems]
        return ValidationFailed(fields)
    if isinstance(error, cred.CredentialNotFound):
        return NotFound("credential not found", code=error.code)
    if isinstance(error, cred.CredentialNameTaken | cred.CredentialConflict):
        return Conflict(str(error), code=error.code)
    if isinstance(error, cred.OAuthStateInvalid | cred.OAuthDenied):
        return BadRequest(str(error), code=error.code)
    if isinstance(error, cred.OAuthReauthNeeded):
        return Conflict(str(error), code=error.code)
    if isinstance(error, cred.OAuthProviderError):
        return BadGateway(str(error), code=error.code)
    return _internal(error)


def from_components(error: comp.ComponentServiceError | comp.ComponentError) -> ApiError:
    """Problems name fields only; a provider's failure (a connection refused while testing)
    is answered by the test route itself, not raised."""
    if isinstance(error, comp.InvalidComponent):
        return ValidationFailed([{"field": p.field, "message": p.message} for p in error.problems])
    if isinstance(error, comp.ComponentNotFound):
        return NotFound(str(error), code=error.code)
    if isinstance(error, comp.ComponentNameTaken | comp.ComponentConflict):
        return Conflict(str(error), code=error.code)
    if isinstance(error, comp.ComponentError):  # opening a provider failed (e.g. no library)
        return ValidationFailed([{"field": "config", "message": str(error)}])
    return _internal(error)


def from_channels(error: chan.ChannelError) -> ApiError:
    """Problems name fields only: the service never puts a token or secret in an error."""
    if isinstance(error, chan.InvalidChannel):
        fields = [{"field": p.field, "message": p.message} for p in error.problems]
        return ValidationFailed(fields, message=str(error))
    if isinstance(error, chan.ChannelNotFound | chan.RouteNotFound):
        return NotFound(str(error), code=error.code)
    if isinstance(error, chan.ChannelConflict):  # name or route taken, ports exhausted
        return Conflict(str(error), code=error.code)
    return _internal(error)


def api_error_of(error: Exception) -> ApiError | None:
    """The API error a service error stands for (None for an error no service raises): the
    one translation both the JSON API's error handlers and the UI's pages use."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, ident.IdentityError):
        return from_identity(error)
    if isinstance(error, cred.CredentialError):
        return from_credentials(error)
    if isinstance(error, chan.ChannelError):
        return from_channels(error)
    if isinstance(error, comp.ComponentServiceError | comp.ComponentError):
        return from_components(error)
    if isinstance(error, FlowValidationError | EngineError | KvError):
        return from_engine(error)
    if isinstance(error, StoreError):
        return from_store(error)
    return None
