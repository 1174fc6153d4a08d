"""Errors raised by the actor runtime.

Hierarchy::

    ActorError
    ├── SpecError                 a child or supervisor spec is malformed (also ValueError)
    ├── MailboxFull               send_nowait on a full mailbox
    ├── CallTimeout               call() got no reply in time (also TimeoutError)
    ├── CallFailed                the handler answering a call raised; __cause__ is its error
    ├── ActorNotRunning           the target exists but is not running right now
    │   └── ActorStopped          the target has stopped for good; its mailbox is closed
    ├── SupervisorError
    │   ├── ChildStartFailed      a child raised before signalling started; __cause__ is its error
    │   ├── SupervisorFailed      restart intensity exceeded; __cause__ is the last child error
    │   ├── TooManyChildren       a dynamic supervisor is at its max_children cap
    │   ├── DuplicateChild        a child id is already in use under that supervisor
    │   └── ChildNotFound         no child with that id / path
    ├── RegistryError
    │   ├── NameTaken             register() of a name already registered
    │   └── NameNotFound          lookup of a name nobody registered
    └── RuntimeFailed             the root supervisor failed; __cause__ is its error
"""

from __future__ import annotations


class ActorError(Exception):
    """Base of every error the runtime raises on purpose."""


class SpecError(ActorError, ValueError):
    """A child spec, supervisor spec or option is malformed."""


class MailboxFull(ActorError):
    """``send_nowait`` found the mailbox at capacity."""


class CallTimeout(ActorError, TimeoutError):
    """A ``call`` received no reply within its timeout."""


class CallFailed(ActorError):
    """The handler answering a ``call`` raised; the actor crashed with that error."""


class ActorNotRunning(ActorError):
    """The target exists but is not running at the moment (starting or restarting)."""


class ActorStopped(ActorNotRunning):
    """The target stopped for good; nothing will ever read its mailbox again."""


class SupervisorError(ActorError):
    """Base of supervision errors."""


class ChildStartFailed(SupervisorError):
    """A child raised before it signalled ``task_status.started()``."""


class SupervisorFailed(SupervisorError):
    """A supervisor exceeded its restart intensity and stopped all of its children."""


class TooManyChildren(SupervisorError):
    """A dynamic supervisor refused a child because it holds ``max_children`` already."""


class DuplicateChild(SupervisorError):
    """A child id is already in use under the same supervisor."""


class ChildNotFound(SupervisorError, LookupError):
    """No child answers to that id or path."""


class RegistryError(ActorError):
    """Base of name-registry errors."""


class NameTaken(RegistryError):
    """The name is already registered to another ref."""


class NameNotFound(RegistryError, LookupError):
    """Nobody registered that name (or its holder has ended)."""


class RuntimeFailed(ActorError):
    """The root supervisor failed; the runtime has stopped."""


def leaves(error: BaseException) -> list[BaseException]:
    """The errors inside nested exception groups (how nurseries report), or ``[error]``."""
    if not isinstance(error, BaseExceptionGroup):
        return [error]
    return [leaf for inner in error.exceptions for leaf in leaves(inner)]


def describe(error: BaseException) -> str:
    """One line for an error: ``Type: message``. An exception group is described by the
    errors inside it, so the line names the cause, not the wrapping."""
    return "; ".join(_one(leaf) for leaf in leaves(error))


def _one(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
