"""The protobuf wire format, read and written by hand (no ``protobuf`` package needed).

A message is a sequence of fields ``key, value`` with ``key = number << 3 | wire_type``:

=========  ================  ====================================================
wire type  name              value
=========  ================  ====================================================
0          varint            base-128 little-endian integer (int32/64, uint, bool,
                             enum; negative ints take 10 bytes, two's complement)
1          fixed64           8 bytes little-endian (double)
2          length-delimited  varint length, then bytes (string, bytes, message,
                             packed repeated scalars)
5          fixed32           4 bytes little-endian (float)
=========  ================  ====================================================

Groups (wire types 3 and 4) are obsolete and rejected. Reading works on ``bytes`` or a
``memoryview`` without copying; packed float arrays come back as numpy views.
"""

from __future__ import annotations

import struct
from typing import Iterator

import numpy as np

from neurovis.errors import NeurovisError

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
_MASK64 = (1 << 64) - 1


class WireError(NeurovisError):
    """Bytes that are not a well-formed protobuf message (truncated or corrupt file)."""


# ----------------------------------------------------------------------------- reading
def decode_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The unsigned varint starting at ``buf[pos]``: ``(value, position after it)``."""
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def to_signed(value: int, bits: int = 64) -> int:
    """A varint read as unsigned -> the two's complement signed value (int32/int64)."""
    value &= _MASK64
    if bits == 32:
        value &= 0xFFFFFFFF
        return value - (1 << 32) if value >= 1 << 31 else value
    return value - (1 << 64) if value >= 1 << 63 else value


def iter_fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """``(field number, wire type, value)`` for each field of one message.

    ``value`` is an ``int`` for varints and a ``memoryview`` for the other wire types (the
    4 or 8 raw bytes of fixed32/fixed64, or the payload of a length-delimited field).
    """
    view = memoryview(buf)
    pos, end = 0, len(view)
    while pos < end:
        key, pos = decode_varint(view, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire == VARINT:
            value, pos = decode_varint(view, pos)
            yield number, wire, value
        elif wire == LENGTH:
            size, pos = decode_varint(view, pos)
            if pos + size > end:
                raise WireError(f"field {number} claims {size} bytes, only {end - pos} left")
            yield number, wire, view[pos : pos + size]
            pos += size
        elif wire in (FIXED32, FIXED64):
            size = 4 if wire == FIXED32 else 8
            if pos + size > end:
                raise WireError(f"truncated fixed{size * 8} field {number}")
            yield number, wire, view[pos : pos + size]
            pos += size
        else:
            raise WireError(f"unsupported wire type {wire} (field {number})")


def packed_varints(data: memoryview | bytes) -> list[int]:
    """The unsigned varints of a packed repeated integer field."""
    values: list[int] = []
    pos, end = 0, len(data)
    while pos < end:
        value, pos = decode_varint(data, pos)
        values.append(value)
    return values


def packed_floats(data: memoryview | bytes) -> np.ndarray:
    """A packed repeated ``float`` field -> float32 array (a read-only view of ``data``)."""
    if len(data) % 4:
        raise WireError(f"packed floats of {len(data)} bytes (not a multiple of 4)")
    return np.frombuffer(data, dtype="<f4")


def packed_doubles(data: memoryview | bytes) -> np.ndarray:
    """A packed repeated ``double`` field -> float64 array (a read-only view of ``data``)."""
    if len(data) % 8:
        raise WireError(f"packed doubles of {len(data)} bytes (not a multiple of 8)")
    return np.frombuffer(data, dtype="<f8")


def fixed32_float(data: memoryview | bytes) -> float:
    return struct.unpack("<f", data)[0]


def fixed64_double(data: memoryview | bytes) -> float:
    return struct.unpack("<d", data)[0]


# ----------------------------------------------------------------------------- writing
def encode_varint(value: int) -> bytes:
    """An integer as a varint; negative values as 64-bit two's complement (10 bytes)."""
    value &= _MASK64
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return encode_varint(number << 3 | wire)


def field_varint(number: int, value: int | bool) -> bytes:
    return key(number, VARINT) + encode_varint(int(value))


def field_bytes(number: int, data: bytes) -> bytes:
    """A length-delimited field: a string (utf-8 encoded), bytes or a nested message."""
    return key(number, LENGTH) + encode_varint(len(data)) + data


def field_string(number: int, text: str) -> bytes:
    return field_bytes(number, text.encode("utf-8"))


def field_float(number: int, value: float) -> bytes:
    return key(number, FIXED32) + struct.pack("<f", value)


def field_double(number: int, value: float) -> bytes:
    return key(number, FIXED64) + struct.pack("<d", value)


def field_packed_floats(number: int, values: np.ndarray | list[float]) -> bytes:
    return field_bytes(number, np.ascontiguousarray(values, dtype="<f4").tobytes())


def field_packed_doubles(number: int, values: np.ndarray | list[float]) -> bytes:
    return field_bytes(number, np.ascontiguousarray(values, dtype="<f8").tobytes())


def field_packed_varints(number: int, values: list[int]) -> bytes:
    return field_bytes(number, b"".join(encode_varint(int(v)) for v in values))
