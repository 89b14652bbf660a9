"""The CapabilityStatement served at ``GET /fhir/metadata``: built from the same
tables the store and the API use, so it lists only what actually works."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.fhir.search import SEARCH_PARAMS, STORED_TYPES
from engine.fhir.store import instant

FHIR_VERSION = "4.0.1"
FHIR_JSON = "application/fhir+json"
INTERACTIONS = ("read", "search-type", "create", "update")
# The types whose input also becomes canonical events on the bus.
CANONICAL_TYPES = ("Patient", "Encounter", "Location", "Observation")


def _resource(type_: str) -> dict[str, Any]:
    note = (
        "Also turned into canonical events (events.adt / events.obs)."
        if type_ in CANONICAL_TYPES
        else "Stored and served as received."
    )
    return {
        "type": type_,
        "documentation": note,
        "interaction": [{"code": code} for code in INTERACTIONS],
        "versioning": "versioned",
        "readHistory": False,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": [
            {"name": p.name, "type": p.kind, "documentation": p.documentation}
            for p in SEARCH_PARAMS[type_]
        ],
    }


def capability_statement(
    *, base_url: str, software_version: str, date: datetime, token_required: bool
) -> dict[str, Any]:
    """The server's CapabilityStatement (R4, ``kind`` instance)."""
    security = (
        "Every request needs 'Authorization: Bearer <token>'."
        if token_required
        else "No authentication is configured."
    )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(date),
        "publisher": "Wardstream",
        "kind": "instance",
        "software": {"name": "Wardstream", "version": software_version},
        "implementation": {"description": "Wardstream FHIR API", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "application/json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "POST [base] takes batch and transaction Bundles; POST "
                    "[base]/$subscription-hook takes Subscription rest-hook notifications."
                ),
                "security": {"cors": False, "description": security},
                "resource": [_resource(type_) for type_ in STORED_TYPES],
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }
        ],
    }


__all__ = ["CANONICAL_TYPES", "FHIR_JSON", "FHIR_VERSION", "capability_statement"]
