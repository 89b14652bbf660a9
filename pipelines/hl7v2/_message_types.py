"""HL7 v2 message types (table 0076) and their trigger events (table 0003),
v2.1 to v2.9, for intake validation. Local Z-types are not listed: a site
adds its own by passing a wider table to the validator."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def _events(prefix: str, numbers: Iterable[int], width: int = 2) -> frozenset[str]:
    return frozenset(f"{prefix}{n:0{width}d}" for n in numbers)


def _codes(*codes: str) -> frozenset[str]:
    return frozenset(codes)


_ADT = _events("A", range(1, 63))
_QUERY = _codes(
    "A19", "Q01", "Q02", "Q03", "Q04", "Q05", "Q06", "Q07", "Q08", "Q09", "Q11", "Q13",
    "Q15", "Q16", "Q17", "Q21", "Q22", "Q23", "Q24", "Q25", "Q26", "Q27", "Q28", "Q29",
    "Q30", "Q31", "R02", "R09", "T12", "V01", "W01",
)  # fmt: skip
_RESPONSE = _codes(
    "A19", "K11", "K13", "K15", "K21", "K22", "K23", "K24", "K25", "K31", "K32", "K33",
    "K34", "R02", "R09", "T12", "V02", "V03",
)  # fmt: skip
_MASTER_FILES = _events("M", range(1, 20))
_PATIENT_CARE = _codes(
    "PC1", "PC2", "PC3", "PC4", "PC5", "PC6", "PC7", "PC8", "PC9", "PCA", "PCB", "PCC",
    "PCD", "PCE", "PCF", "PCG", "PCH", "PCJ", "PCK", "PCL",
)  # fmt: skip
_REFERRAL = _codes(
    "I01", "I02", "I03", "I04", "I05", "I06", "I07", "I08", "I09", "I10", "I11", "I12",
    "I13", "I14", "I15", "I21", "I22",
)  # fmt: skip

# An empty set accepts any event: an ACK's are those of the message it acknowledges.
ANY_EVENT: frozenset[str] = frozenset()

MESSAGE_TYPES: Mapping[str, frozenset[str]] = {
    "ACK": ANY_EVENT,
    "ADR": _ADT,
    "ADT": _ADT,
    "BAR": _codes("P01", "P02", "P05", "P06", "P10", "P12"),
    "BPS": _codes("O29"),
    "BRP": _codes("O30"),
    "BRT": _codes("O32"),
    "BTS": _codes("O31"),
    "CRM": _events("C", range(1, 9)),
    "CSU": _events("C", range(9, 13)),
    "DFT": _codes("P03", "P11"),
    "DOC": _codes("T12"),
    "DSR": _codes("Q01", "Q03"),
    "EAC": _codes("U07"),
    "EAN": _codes("U09"),
    "EAR": _codes("U08"),
    "EHC": _events("E", (1, 2, 4, 10, 12, 13, 15, 20, 21, 24)),
    "ESR": _codes("U02"),
    "ESU": _codes("U01"),
    "INR": _codes("U06", "U14"),
    "INU": _codes("U05"),
    "LSU": _codes("U12", "U13"),
    "MDM": _events("T", range(1, 12)),
    "MFD": _codes("MFA"),
    "MFK": _MASTER_FILES,
    "MFN": _MASTER_FILES,
    "MFQ": _MASTER_FILES,
    "MFR": _MASTER_FILES,
    "NMD": _codes("N02"),
    "NMQ": _codes("N01"),
    "NMR": _codes("N01"),
    "OMB": _codes("O27"),
    "OMD": _codes("O03"),
    "OMG": _codes("O19"),
    "OMI": _codes("O23"),
    "OML": _codes("O21", "O33", "O35", "O39", "O59"),
    "OMN": _codes("O07"),
    "OMP": _codes("O09"),
    "OMQ": _codes("O42"),
    "OMS": _codes("O05"),
    "OPL": _codes("O37"),
    "OPR": _codes("O38"),
    "OPU": _codes("R25"),
    "ORA": _codes("R33", "R41"),
    "ORB": _codes("O28"),
    "ORD": _codes("O04"),
    "ORF": _codes("R04"),
    "ORG": _codes("O20"),
    "ORI": _codes("O24"),
    "ORL": _codes("O22", "O34", "O36", "O40", "O53", "O54", "O55", "O56"),
    "ORM": _codes("O01"),
    "ORN": _codes("O08"),
    "ORP": _codes("O10"),
    "ORR": _codes("O02"),
    "ORS": _codes("O06"),
    "ORU": _codes("R01", "R30", "R31", "R32", "R40", "R41", "R42", "R43", "W01"),
    "OSQ": _codes("Q06"),
    "OSR": _codes("Q06"),
    "OSU": _codes("O41", "O52"),
    "OUL": _codes("R21", "R22", "R23", "R24"),
    "PEX": _codes("P07", "P08"),
    "PGL": _codes("PC6", "PC7", "PC8"),
    "PIN": _codes("I07"),
    "PMU": _events("B", range(1, 9)),
    "PPG": _codes("PCG", "PCH", "PCJ"),
    "PPP": _codes("PCB", "PCC", "PCD"),
    "PPR": _codes("PC1", "PC2", "PC3"),
    "PPT": _codes("PCL"),
    "PPV": _codes("PCA"),
    "PRR": _codes("PC5"),
    "PTR": _codes("PCF"),
    "QBP": _QUERY | _codes("E03", "E22", "Z73"),
    "QCK": _codes("Q02"),
    "QCN": _codes("J01"),
    "QRY": _QUERY | _PATIENT_CARE,
    "QSB": _codes("Q16"),
    "QSX": _codes("J02"),
    "QVR": _codes("Q17"),
    "RAR": _codes("RAR"),
    "RAS": _codes("O17"),
    "RCI": _codes("I05"),
    "RCL": _codes("I06"),
    "RDE": _codes("O01", "O11", "O25"),
    "RDR": _codes("RDR"),
    "RDS": _codes("O13"),
    "RDY": _codes("K15", "Z80", "Z98"),
    "REF": _REFERRAL,
    "RER": _codes("RER"),
    "RGR": _codes("RGR"),
    "RGV": _codes("O01", "O15"),
    "ROR": _codes("ROR"),
    "RPA": _codes("I08", "I09", "I10", "I11"),
    "RPI": _codes("I01", "I04"),
    "RPL": _codes("I02"),
    "RPR": _codes("I03"),
    "RQA": _codes("I08", "I09", "I10", "I11"),
    "RQC": _codes("I05", "I06"),
    "RQI": _codes("I01", "I02", "I03", "I07"),
    "RQP": _codes("I04"),
    "RRA": _codes("O02", "O18"),
    "RRD": _codes("O02", "O14"),
    "RRE": _codes("O02", "O12", "O26"),
    "RRG": _codes("O02", "O16"),
    "RRI": _REFERRAL,
    "RSP": _RESPONSE,
    "RTB": _codes("K13", "Q13"),
    "SCN": _codes("S37"),
    "SDN": _codes("S36"),
    "SDR": _codes("S31", "S32"),
    "SLR": _codes("S28", "S29", "S30", "S34", "S35"),
    "SMD": _codes("S32"),
    "SQM": _codes("S25"),
    "SQR": _codes("S25"),
    "SRM": _events("S", range(1, 12)),
    "SRR": _events("S", range(1, 12)),
    "SSR": _codes("U04"),
    "SSU": _codes("U03"),
    "STC": _codes("S33"),
    "SIU": _events("S", range(12, 27)),
    "TCU": _codes("U10", "U11"),
    "UDM": _codes("Q05"),
    "VXQ": _codes("V01"),
    "VXR": _codes("V03"),
    "VXU": _codes("V04"),
    "VXX": _codes("V02"),
}

SUPPORTED_VERSIONS: frozenset[str] = frozenset(
    {
        "2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1",
        "2.8", "2.8.1", "2.8.2", "2.9", "2.9.1",
    }
)  # fmt: skip

PROCESSING_IDS: frozenset[str] = frozenset({"P", "T", "D"})

__all__ = ["ANY_EVENT", "MESSAGE_TYPES", "PROCESSING_IDS", "SUPPORTED_VERSIONS"]
