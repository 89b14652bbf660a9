"""Typed errors raised by the embedded log (re-exported by ``engine.bus.embedded``)."""

from __future__ import annotations


class BusError(Exception):
    """Base class of every error the embedded log raises."""


class BusClosedError(BusError):
    """The log (or consumer) is not started, or has been stopped."""


class BusWriteError(BusError):
    """A write transaction failed (disk full, lock wait beyond ``busy_timeout_ms``, ...).
    Nothing of the failed transaction was committed; the caller may retry."""


class UnknownTopicError(BusError):
    """The topic does not exist (and the operation does not create topics)."""


class InvalidTopicError(BusError, ValueError):
    """A topic name or spec that Kafka would reject too."""


class InvalidPartitionError(BusError, ValueError):
    """An explicit partition outside ``0 .. partitions - 1``."""


class InvalidBusUrlError(BusError, ValueError):
    """A ``sqlite://`` URL without a file path."""
