"""MLLP framing: the incremental decoder and the encoder."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from connectors.mllp import MllpDecoder, OversizeFrame, encode_frame

MESSAGE = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||42\r"


def feed_all(decoder: MllpDecoder, chunks: list[bytes]) -> list[bytes | OversizeFrame]:
    out: list[bytes | OversizeFrame] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out


def test_encode_frame() -> None:
    assert encode_frame(b"abc") == b"\x0babc\x1c\r"


def test_one_frame_in_one_read() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(encode_frame(MESSAGE)) == [MESSAGE]
    assert not decoder.in_frame


def test_a_frame_split_at_every_byte_boundary() -> None:
    frame = encode_frame(MESSAGE)
    for cut in range(1, len(frame)):
        decoder = MllpDecoder()
        assert decoder.feed(frame[:cut]) == []
        assert decoder.feed(frame[cut:]) == [MESSAGE], cut


def test_a_frame_fed_one_byte_at_a_time() -> None:
    decoder = MllpDecoder()
    frame = encode_frame(MESSAGE)
    assert feed_all(decoder, [frame[i : i + 1] for i in range(len(frame))]) == [MESSAGE]


def test_end_bytes_split_across_reads() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(b"\x0b" + MESSAGE + b"\x1c") == []
    assert decoder.in_frame
    assert decoder.feed(b"\r") == [MESSAGE]


def test_several_frames_in_one_read() -> None:
    payloads = [MESSAGE.replace(b"|1|", f"|{n}|".encode()) for n in range(5)]
    decoder = MllpDecoder()
    assert decoder.feed(b"".join(encode_frame(p) for p in payloads)) == payloads


def test_bytes_outside_frames_are_discarded() -> None:
    decoder = MllpDecoder()
    data = b"noise" + encode_frame(b"one") + b"\r\n" + encode_frame(b"two") + b"tail"
    assert decoder.feed(data) == [b"one", b"two"]
    assert decoder.discarded_bytes == len(b"noise") + 2 + len(b"tail")


def test_a_lone_fs_is_payload() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(b"\x0bab\x1ccd\x1c\r") == [b"ab\x1ccd"]
    assert decoder.feed(b"\x0bab\x1c") == []
    assert decoder.feed(b"x\x1c\r") == [b"ab\x1cx"]


def test_a_start_byte_inside_a_frame_starts_over() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(b"\x0bpartial") == []
    assert decoder.feed(b"\x0bwhole\x1c\r") == [b"whole"]
    assert decoder.discarded_bytes == len(b"partial")


def test_empty_frame() -> None:
    assert MllpDecoder().feed(b"\x0b\x1c\r") == [b""]


def test_oversize_frame_is_refused_then_the_next_frame_is_fine() -> None:
    decoder = MllpDecoder(max_frame_bytes=100, head_bytes=10)
    big = b"MSH|" + b"x" * 300
    out = feed_all(decoder, [b"\x0b" + big[:50], big[50:], b"\x1c", b"\r" + encode_frame(b"ok")])
    assert out == [OversizeFrame(size=len(big), head=big[:10]), b"ok"]


def test_oversize_in_one_read_keeps_the_head() -> None:
    decoder = MllpDecoder(max_frame_bytes=8, head_bytes=4096)
    assert decoder.feed(encode_frame(b"0123456789") + encode_frame(b"small")) == [
        OversizeFrame(size=10, head=b"01234567"),
        b"small",
    ]


def test_a_frame_of_exactly_the_limit_is_accepted() -> None:
    decoder = MllpDecoder(max_frame_bytes=5)
    assert decoder.feed(encode_frame(b"12345")) == [b"12345"]
    assert feed_all(decoder, [b"\x0b123", b"45\x1c\r"]) == [b"12345"]


@given(
    payloads=st.lists(
        st.binary(max_size=64).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b"")),
        max_size=6,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=12),
)
def test_any_chunking_gives_the_same_frames(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(p) for p in payloads)
    bounds = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    assert feed_all(MllpDecoder(), chunks) == payloads


@given(st.lists(st.binary(max_size=40), max_size=10))
def test_arbitrary_input_never_breaks_the_decoder(chunks: list[bytes]) -> None:
    decoder = MllpDecoder(max_frame_bytes=16)
    for item in feed_all(decoder, chunks):
        if isinstance(item, bytes):
            assert len(item) <= 16
        else:
            assert item.size > 16
    assert decoder.feed(b"\x0bok\x1c\r")[-1:] == [b"ok"]
