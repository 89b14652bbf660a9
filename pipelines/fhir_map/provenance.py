"""Source envelope → FHIR Provenance (IG MSH[Provenance-Source], EVN[Provenance]).

One Provenance per mapped event: it targets every resource the event produced,
records when the source message was received, what happened (the v2 trigger,
else a v3-DataOperation), who sent it (MSH-3 sending application on behalf of
MSH-4 sending facility, from the envelope headers) and the message itself
(MSH-10 / the FHIR resource id).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from engine.types import Envelope
from pipelines.fhir_map import _codes as codes
from pipelines.fhir_map._json import Resource, clean, concept, date_time
from pipelines.fhir_map.ids import provenance_id

SENDING_APPLICATION = "sending_application"
SENDING_FACILITY = "sending_facility"
_V2_TRIGGER = re.compile(r"[A-Z][0-9]{2}")
_DATA_OPERATION = {
    "admit": ("CREATE", "create"),
    "register": ("CREATE", "create"),
    "preadmit": ("CREATE", "create"),
    "obs": ("CREATE", "create"),
    "cancel_admit": ("NULLIFY", "nullify"),
    "cancel_transfer": ("NULLIFY", "nullify"),
    "cancel_discharge": ("NULLIFY", "nullify"),
}


def _hd(text: str, kind: str, role: str, system_base: str) -> Resource:
    """An HD (namespace^universal id^type) as a logical reference to a ``kind`` resource."""
    namespace, _, rest = text.partition("^")
    universal, _, id_type = rest.partition("^")
    if universal and id_type.upper() == "ISO":
        identifier = {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{universal}"}
    else:
        identifier = {"system": f"{system_base}{role}", "value": namespace or universal}
    return {"type": kind, "identifier": identifier, "display": namespace or universal}


def _agents(source: Envelope, system_base: str) -> list[Resource]:
    author = concept(codes.PROVENANCE_PARTICIPANT_TYPE, "author", "Author")
    application = source.headers.get(SENDING_APPLICATION, "").strip("^")
    facility = source.headers.get(SENDING_FACILITY, "").strip("^")
    agents: list[Resource] = []
    if application:
        agents.append(
            clean(
                type=author,
                who=_hd(application, "Device", "application", system_base),
                onBehalfOf=_hd(facility, "Organization", "facility", system_base)
                if facility
                else None,
            )
        )
    elif facility:
        agents.append(
            {"type": author, "who": _hd(facility, "Organization", "facility", system_base)}
        )
    # The engine itself assembled the resources (IG MSH[Provenance-Transformation]).
    agents.append(
        {
            "type": concept(codes.PROVENANCE_PARTICIPANT_TYPE, "assembler", "Assembler"),
            "who": {
                "type": "Device",
                "identifier": {"system": f"{system_base}channel", "value": source.channel},
                "display": f"Wardstream channel {source.channel}",
            },
        }
    )
    return agents


def _activity(kind: str, action: str | None, trigger: str) -> Resource:
    if _V2_TRIGGER.fullmatch(trigger):
        return concept(codes.V2_0003, trigger, codes.EVENT_TYPE.get(trigger))
    code, display = _DATA_OPERATION.get(action or kind, ("UPDATE", "revise"))
    return concept(codes.V3_DATA_OPERATION, code, display)


def _source_kind(content_type: str) -> str:
    if "hl7-v2" in content_type:
        return "HL7v2 message"
    if "fhir" in content_type or "json" in content_type:
        return "FHIR resource"
    return "message"


def provenance_resource(
    targets: Sequence[Resource],
    source: Envelope,
    *,
    kind: str,
    action: str | None,
    trigger: str,
    message_id: str,
    occurred_at: datetime,
    system_base: str,
) -> Resource:
    """The Provenance of ``targets``, produced from ``source``."""
    entity = {
        "role": "source",
        "what": {
            "identifier": {"value": source.correlation_id},
            "display": f"{_source_kind(source.content_type)} {source.correlation_id}",
        },
    }
    return {
        "resourceType": "Provenance",
        "id": provenance_id(source.id, kind, trigger, message_id),
        "target": [{"reference": f"{r['resourceType']}/{r['id']}"} for r in targets],
        "occurredDateTime": date_time(occurred_at),
        "recorded": date_time(source.received_at),
        "activity": _activity(kind, action, trigger),
        "agent": _agents(source, system_base),
        "entity": [entity],
    }
