"""Canonical msgpack: the only encoding the state machine reads or writes.

msgpack has no canonical form by itself (the same value can be written with
different integer widths, and maps have no order). gridledger therefore uses a
strict subset: arrays (never maps), integers, UTF-8 strings, binary, booleans
and nil, each written in its shortest form as msgpack-python writes it with
``use_bin_type=True``. A decoder accepts bytes only if re-encoding the decoded
value gives the same bytes back.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import msgpack

# Values of the canonical subset.
Wire: TypeAlias = bool | int | str | bytes | list["Wire"] | None

MAX_INT = (1 << 63) - 1  # amounts, nonces and times are signed 64-bit in every client language
MIN_INT = -(1 << 63)


class CodecError(ValueError):
    """Bytes or values outside the canonical subset."""


class NonCanonical(CodecError):
    """A value of the subset written in another than its canonical (shortest) form."""


def encode(value: Any) -> bytes:
    """Canonical bytes of a wire value (tuples are written as arrays)."""
    _check(value, depth=0)
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def decode(data: bytes, max_depth: int = 16) -> Wire:
    """Decode canonical bytes; reject anything that would not re-encode identically."""
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            timestamp=0,
            max_bin_len=len(data),
            max_str_len=len(data),
            max_array_len=len(data),
            max_map_len=0,
            max_ext_len=0,
            ext_hook=_refuse_ext,
        )
    except CodecError:
        raise
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise CodecError(f"not a single msgpack value: {exc}") from exc
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CodecError(f"not canonical msgpack: {exc}") from exc
    _check(value, depth=0, max_depth=max_depth)
    if msgpack.packb(value, use_bin_type=True) != data:
        raise NonCanonical("bytes are not in canonical form (integer width, string type or length prefix)")
    return value  # type: ignore[no-any-return]


def _refuse_ext(code: int, data: bytes) -> Any:
    raise CodecError(f"msgpack extension type {code} is not allowed")


def _check(value: Any, depth: int, max_depth: int = 16) -> None:
    if depth > max_depth:
        raise CodecError("value nested too deeply")
    if value is None or isinstance(value, bool | str | bytes):
        return
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise CodecError(f"integer {value} outside the signed 64-bit range")
        return
    # Exact types: msgpack's ExtType is a tuple subclass and must not pass as an array.
    if type(value) in (list, tuple):
        for item in value:
            _check(item, depth + 1, max_depth)
        return
    raise CodecError(f"type {type(value).__name__} is not allowed in canonical msgpack")
