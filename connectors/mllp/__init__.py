"""MLLP (HL7v2 over TCP): framing, the listener that feeds the bus, and a sender."""

from connectors.mllp._stats import LatencyReservoir, ListenerStats
from connectors.mllp.framing import (
    END_BLOCK,
    START_BLOCK,
    MllpDecoder,
    OversizeFrame,
    encode_frame,
)
from connectors.mllp.listener import HL7_CONTENT_TYPE, MllpListener
from connectors.mllp.sender import MllpSender, MllpSendError, encode_message
from pipelines.hl7v2.ack import Ack

__all__ = [
    "END_BLOCK",
    "HL7_CONTENT_TYPE",
    "START_BLOCK",
    "Ack",
    "LatencyReservoir",
    "ListenerStats",
    "MllpDecoder",
    "MllpListener",
    "MllpSendError",
    "MllpSender",
    "OversizeFrame",
    "encode_frame",
    "encode_message",
]
