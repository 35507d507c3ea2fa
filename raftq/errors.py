"""The one exception tree of raftq.

Every error a caller can see is a ``RaftqError``. The HTTP API maps each class
to a status and an error code; the client maps them back, so callers catch the
same names whether they talk to a node in-process or over the network.
"""

from __future__ import annotations

from typing import Any


class RaftqError(Exception):
    """Base of every raftq error."""

    code = "error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return {"error": body}


class InvalidRequest(RaftqError):
    """The request is malformed; ``field`` names the offending field."""

    code = "invalid_request"
    status = 400


class PayloadTooLarge(InvalidRequest):
    code = "payload_too_large"
    status = 413


class NotFound(RaftqError):
    code = "not_found"
    status = 404


class Conflict(RaftqError):
    """The task is not in a status that allows the operation."""

    code = "conflict"
    status = 409


class StaleLease(Conflict):
    """The lease token is not the task's current one (fencing)."""

    code = "stale_lease"


class AlreadyFinished(Conflict):
    """The task was already finished under another request."""

    code = "already_finished"


class ChangeInProgress(Conflict):
    """Another membership change is under way (the last added node is catching up)."""

    code = "change_in_progress"


class WouldLoseQuorum(Conflict):
    """The membership change would leave fewer answering members than a majority."""

    code = "would_lose_quorum"


class QueueFull(RaftqError):
    """The queue holds its ``max_queued`` waiting tasks: nothing was created; retry
    after ``Retry-After`` seconds."""

    code = "queue_full"
    status = 429
    retry_after_s = 1


class Unauthorized(RaftqError):
    """No API key, or one the cluster does not know (or has revoked)."""

    code = "unauthorized"
    status = 401


class Forbidden(RaftqError):
    """The API key's role does not allow the call."""

    code = "forbidden"
    status = 403


class Unavailable(RaftqError):
    """Retryable: no leader, overloaded, or the outcome is unknown.

    A client that sees this must retry with the same ids: the operation may or
    may not have happened.
    """

    code = "unavailable"
    status = 503
    retry_after_s = 1


class NoLeader(Unavailable):
    code = "no_leader"


class Overloaded(Unavailable):
    code = "overloaded"


class OutcomeUnknown(Unavailable):
    code = "outcome_unknown"


class InsufficientStorage(Unavailable):
    """The node cannot write to its disk (full): nothing was recorded.

    Retryable: another node may accept the write, and this one accepts writes
    again by itself once space is freed.
    """

    code = "insufficient_storage"
    status = 507


class CorruptData(RaftqError):
    """A data file of the node failed verification; the node does not serve from it."""

    code = "corrupt_data"
    status = 500


class InternalError(RaftqError):
    """The node failed on a request it accepted: a bug (see the node's log), not retried."""

    code = "internal"
    status = 500


class TaskFailed(RaftqError):
    """Raised by ``result()`` when the task ended dead-lettered or cancelled."""

    code = "task_failed"
    status = 200

    def __init__(
        self,
        message: str,
        *,
        task_id: str = "",
        status: str = "dead",
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.task_status = status
        self.errors = errors or []

    @property
    def remote_traceback(self) -> str:
        if not self.errors:
            return ""
        last = self.errors[-1].get("error") or {}
        return str(last.get("traceback") or "")


class EventsGone(RaftqError):
    """The node no longer holds the task changes after the index a follower resumed
    from (``GET /v1/events`` answered ``gone``): resync from the task API, then
    follow again from ``oldest`` or from now."""

    code = "gone"
    status = 410

    def __init__(self, message: str, *, since: int = 0, oldest: int = 0) -> None:
        super().__init__(message)
        self.since = since
        self.oldest = oldest


class ConfigError(RaftqError):
    """A node or worker configuration is invalid; the message names the key or file."""

    code = "config_error"


_BY_CODE: dict[str, type[RaftqError]] = {
    cls.code: cls
    for cls in (
        RaftqError,
        InvalidRequest,
        PayloadTooLarge,
        NotFound,
        Conflict,
        StaleLease,
        AlreadyFinished,
        ChangeInProgress,
        WouldLoseQuorum,
        QueueFull,
        Unauthorized,
        Forbidden,
        Unavailable,
        NoLeader,
        Overloaded,
        OutcomeUnknown,
        InsufficientStorage,
        CorruptData,
        InternalError,
    )
}


def from_json(status: int, body: Any) -> RaftqError:
    """Rebuild the exception a node answered with (used by the client)."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        cls = Unavailable if status >= 500 else RaftqError
        return cls(f"HTTP {status}")
    cls = _BY_CODE.get(str(err.get("code")), Unavailable if status >= 500 else RaftqError)
    return cls(str(err.get("message", "")), field=err.get("field"))
