"""TFRecord framing (pure, no TensorFlow): write and read records with masked CRC32C.

A TFRecord file is a sequence of records, each framed as::

    uint64 length (little endian) | uint32 masked_crc32c(length bytes)
    bytes  data[length]           | uint32 masked_crc32c(data)

This is the format of TF Serving's warmup file
(``assets.extra/tf_serving_warmup_requests``). CRC32C comes from ``crcmod``
(already a dependency of oss2, with its C extension).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import crcmod.predefined

_crc32c = crcmod.predefined.mkCrcFun("crc-32c")
_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C: rotate right by 15 bits and add a constant."""
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def encode(record: bytes) -> bytes:
    """One framed record."""
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", masked_crc32c(length)) + record + _FOOTER.pack(masked_crc32c(record))


def write(stream: BinaryIO, records: Iterable[bytes]) -> int:
    """Write framed ``records`` to ``stream``; returns how many were written."""
    count = 0
    for record in records:
        stream.write(encode(record))
        count += 1
    return count


class FramingError(ValueError):
    """The bytes are not a well-formed TFRecord stream; the message says where."""


@dataclass(frozen=True)
class Record:
    index: int
    offset: int
    data: bytes


def read(data: bytes, *, limit: int | None = None) -> Iterator[Record]:
    """Records of a TFRecord byte string, checking both CRCs of each.

    Raises ``FramingError`` naming the record index and byte offset of the first
    truncated or corrupt record. With ``limit``, stops after that many records
    plus one (so a caller can tell "more than limit").
    """
    offset = 0
    index = 0
    total = len(data)
    while offset < total:
        if limit is not None and index > limit:
            return
        if total - offset < _HEADER.size:
            raise FramingError(f"record {index} at byte {offset}: truncated header")
        length_bytes = data[offset : offset + 8]
        (length, length_crc) = _HEADER.unpack_from(data, offset)
        if masked_crc32c(length_bytes) != length_crc:
            raise FramingError(f"record {index} at byte {offset}: length CRC mismatch")
        start = offset + _HEADER.size
        end = start + length
        if end + _FOOTER.size > total:
            raise FramingError(f"record {index} at byte {offset}: truncated data ({length} bytes declared)")
        payload = data[start:end]
        (data_crc,) = _FOOTER.unpack_from(data, end)
        if masked_crc32c(payload) != data_crc:
            raise FramingError(f"record {index} at byte {offset}: data CRC mismatch")
        yield Record(index=index, offset=offset, data=payload)
        offset = end + _FOOTER.size
        index += 1
