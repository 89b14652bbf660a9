"""Census records on ``census.wards``, keyed by ward."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class WardCensus(BaseModel):
    """Occupied beds of one ward after a change. A bed held for a patient on leave
    counts as occupied, and also in ``on_leave``."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = Field(default=1, description="Version of this record schema.")
    ward: str = Field(description="Ward / point of care code.")
    occupied: int = Field(ge=0, description="Number of occupied beds.")
    on_leave: int = Field(
        default=0,
        ge=0,
        description="Occupied beds held for a patient on leave of absence (A21 until A22).",
    )
    beds: dict[str, str] = Field(
        description="Occupied bed (room/bed, or unassigned:<patient>) → patient identifier."
    )
    as_of: AwareDatetime = Field(description="Time of the event that produced this state.")
