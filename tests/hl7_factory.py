"""Small, explicit HL7v2 messages for tests."""

from __future__ import annotations


def adt(
    trigger: str,
    control_id: str,
    patient: str,
    *,
    ward: str = "AMU",
    room: str = "R1",
    bed: str = "B1",
    prior: str = "",
    when: str = "20260105101500+0000",
    sending_app: str = "EHR",
    sending_facility: str = "GENERAL",
    name: str = "DOE^JANE^Q",
    birth_date: str = "19580214",
    address: str = "12 HIGH STREET^^LEEDS^^LS1 4AP^GBR",
    phone: str = "(0113)4960123",
) -> str:
    """An ADT^A01/A02/A03 (v2.5) with MSH, EVN, PID, PV1 and \\r separators."""
    pv1 = [""] * 46
    pv1[0:4] = ["PV1", "1", "I", f"{ward}^{room}^{bed}^GENERAL"]
    pv1[6] = prior
    pv1[10] = "MED"
    pv1[19] = f"V{patient}"
    pv1[44 if trigger != "A03" else 45] = when
    segments = [
        f"MSH|^~\\&|{sending_app}|{sending_facility}|WARDSTREAM|GENERAL|{when}||ADT^{trigger}^ADT_A01"
        f"|{control_id}|P|2.5",
        f"EVN|{trigger}|{when}",
        f"PID|1||{patient}^^^GENERAL^MR||{name}||{birth_date}|F|||{address}||{phone}",
        "|".join(pv1),
    ]
    return "\r".join(segments) + "\r"
