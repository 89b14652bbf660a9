"""Live bed census: held beds per ward as keyed state, following every ADT action."""

from pipelines.census.step import (
    CensusStep,
    apply_event,
    bed_key,
    census_snapshot,
    ward_census,
)

__all__ = ["CensusStep", "apply_event", "bed_key", "census_snapshot", "ward_census"]
