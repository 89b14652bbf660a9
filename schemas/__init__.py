"""Contracts on the bus: the topic catalogue, canonical event models and the
generated JSON Schemas checked in beside them."""
