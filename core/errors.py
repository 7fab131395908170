"""Domain errors. The server maps each class to one gRPC status code; nothing else does."""


class SegmentdError(Exception):
    """Base of every error the service reports to a caller."""


class InvalidArgument(SegmentdError):
    """Bad input. `field` names the offending part, e.g. ``events[3].params[2].value``."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)

    def under(self, prefix: str) -> "InvalidArgument":
        """The same error with its field placed under `prefix` (``prefix.field``)."""
        if not self.field:
            return InvalidArgument(prefix, self.reason)
        sep = "" if self.field.startswith("[") else "."
        return InvalidArgument(f"{prefix}{sep}{self.field}", self.reason)


class NotFound(SegmentdError):
    """The named thing (contact, segment, event type) does not exist."""


class AlreadyExists(SegmentdError):
    """Creating something whose name or identifier is taken."""


class FailedPrecondition(SegmentdError):
    """The request is valid but the current state forbids it."""


class ResourceExhausted(SegmentdError):
    """A configured limit was reached; the message names the limit."""


class Unavailable(SegmentdError):
    """The service cannot take the request now (starting, stopping, storage failed)."""
