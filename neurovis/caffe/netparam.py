"""Caffe's ``NetParameter`` from ``.caffemodel`` bytes or ``.prototxt`` text, without Caffe.

Both sources become the same *normalized* nested dicts, driven by the tables in
:mod:`neurovis.caffe.schema`: a repeated field is a list, an optional field a single value
(absent when unset; :func:`neurovis.caffe.schema.get` supplies defaults), enums are their
names (``"MAX"``), packed blob data are float32 numpy arrays. :func:`net_spec` then reads a
normalized ``NetParameter`` of any generation (V2 ``layer`` entries, field 100, string
types; V1 ``layers`` entries, field 2, enum types; V0 ``layers { layer { ... } }``),
upgraded as Caffe upgrades it (:mod:`neurovis.caffe.upgrade`), into a :class:`NetSpec`
of :class:`LayerSpec` with V2 type names and numpy blobs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from neurovis.errors import NeurovisError
from neurovis.caffe import wire
from neurovis.caffe.prototxt import parse_prototxt
from neurovis.caffe.schema import BY_NAME, BY_NUMBER, ENUM_VALUES, ENUMS
from neurovis.caffe.upgrade import upgrade_net

_VARINT_KINDS = ("bool", "uint", "int")


# ----------------------------------------------------------------------------- binary
def _scalar(kind: str, wire_type: int, value: Any, where: str) -> list[Any]:
    """The value(s) one wire field holds for a scalar ``kind`` (several when packed)."""
    if kind in _VARINT_KINDS or kind.startswith("enum:"):
        if wire_type == wire.VARINT:
            raw = [value]
        elif wire_type == wire.LENGTH:
            raw = wire.packed_varints(value)
        else:
            raise wire.WireError(f"{where}: wire type {wire_type} for an integer field")
        if kind == "bool":
            return [bool(v) for v in raw]
        if kind == "int":
            return [wire.to_signed(v) for v in raw]
        if kind.startswith("enum:"):
            names = ENUMS[kind[5:]]
            return [names.get(wire.to_signed(v), wire.to_signed(v)) for v in raw]
        return raw
    if kind == "float":
        if wire_type == wire.FIXED32:
            return [wire.fixed32_float(value)]
        if wire_type == wire.LENGTH:
            return [float(v) for v in wire.packed_floats(value)]
    elif kind == "double":
        if wire_type == wire.FIXED64:
            return [wire.fixed64_double(value)]
        if wire_type == wire.LENGTH:
            return [float(v) for v in wire.packed_doubles(value)]
    elif kind in ("string", "bytes"):
        if wire_type == wire.LENGTH:
            data = bytes(value)
            return [data.decode("utf-8", errors="replace") if kind == "string" else data]
    raise wire.WireError(f"{where}: wire type {wire_type} for a {kind} field")


def decode_message(message_type: str, data: bytes | memoryview) -> dict[str, Any]:
    """Binary protobuf ``data`` of ``message_type`` (a :data:`~schema.MESSAGES` key) ->
    a normalized dict. Unknown field numbers are skipped.

    Raises:
        wire.WireError: malformed bytes (a :class:`~neurovis.errors.NeurovisError`).
    """
    fields = BY_NUMBER[message_type]
    out: dict[str, Any] = {}
    arrays: dict[str, list[np.ndarray]] = {}
    for number, wire_type, value in wire.iter_fields(data):
        spec = fields.get(number)
        if spec is None:
            continue
        where = f"{message_type}.{spec.name}"
        if spec.kind in ("floats", "doubles"):
            dtype = "<f4" if spec.kind == "floats" else "<f8"
            if wire_type == wire.LENGTH:
                chunk = wire.packed_floats(value) if spec.kind == "floats" else wire.packed_doubles(value)
            elif wire_type == (wire.FIXED32 if spec.kind == "floats" else wire.FIXED64):
                chunk = np.frombuffer(value, dtype=dtype)
            else:
                raise wire.WireError(f"{where}: wire type {wire_type} for packed {spec.kind}")
            arrays.setdefault(spec.name, []).append(chunk)
            continue
        if spec.kind.startswith("msg:"):
            if wire_type != wire.LENGTH:
                raise wire.WireError(f"{where}: wire type {wire_type} for a message field")
            values: list[Any] = [decode_message(spec.kind[4:], value)]
        else:
            values = _scalar(spec.kind, wire_type, value, where)
        if spec.repeated:
            out.setdefault(spec.name, []).extend(values)
        elif values:
            out[spec.name] = values[-1]
    for name, chunks in arrays.items():
        out[name] = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    return out


def encode_message(message_type: str, message: Mapping[str, Any]) -> bytes:
    """A normalized dict -> binary protobuf of ``message_type`` (the inverse of
    :func:`decode_message`). A scalar given for a repeated field counts as a list of one.

    Raises:
        NeurovisError: a field the schema does not know, or a value of the wrong kind.
    """
    fields = BY_NAME[message_type]
    parts: list[bytes] = []
    for name, value in message.items():
        spec = fields.get(name)
        if spec is None:
            raise NeurovisError(f"{message_type} has no field {name!r} that neurovis can write; remove it")
        if spec.kind in ("floats", "doubles"):
            writer = wire.field_packed_floats if spec.kind == "floats" else wire.field_packed_doubles
            parts.append(writer(spec.number, np.asarray(value).ravel()))
            continue
        values = list(value) if spec.repeated and isinstance(value, (list, tuple)) else [value]
        if spec.packed and spec.kind in _VARINT_KINDS:
            parts.append(wire.field_packed_varints(spec.number, [int(v) for v in values]))
            continue
        for item in values:
            parts.append(_encode_one(spec.kind, spec.number, item, f"{message_type}.{name}"))
    return b"".join(parts)


def _encode_one(kind: str, number: int, value: Any, where: str) -> bytes:
    if kind.startswith("msg:"):
        return wire.field_bytes(number, encode_message(kind[4:], value))
    if kind.startswith("enum:"):
        if isinstance(value, str):
            names = ENUM_VALUES[kind[5:]]
            if value not in names:
                raise NeurovisError(f"{where}: {value!r} is not one of {', '.join(names)}")
            value = names[value]
        return wire.field_varint(number, int(value))
    if kind in _VARINT_KINDS:
        return wire.field_varint(number, int(value))
    if kind == "float":
        return wire.field_float(number, float(value))
    if kind == "double":
        return wire.field_double(number, float(value))
    if kind == "string":
        return wire.field_string(number, str(value))
    if kind == "bytes":
        return wire.field_bytes(number, bytes(value))
    raise NeurovisError(f"{where}: cannot encode kind {kind}")


# ----------------------------------------------------------------------------- text
def _text_value(kind: str, value: Any, where: str) -> Any:
    bad = NeurovisError(f"prototxt {where}: {value!r} is not a valid {kind.split(':')[-1]}; fix the prototxt")
    if kind.startswith("msg:"):
        if not isinstance(value, dict):
            raise bad
        return normalize_text(kind[4:], value, where)
    if kind.startswith("enum:"):
        names = ENUM_VALUES[kind[5:]]
        if isinstance(value, str) and value in names:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value in ENUMS[kind[5:]]:
            return ENUMS[kind[5:]][value]
        raise NeurovisError(f"prototxt {where}: {value!r} is not one of {', '.join(names)}")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        raise bad
    if kind in ("uint", "int"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if isinstance(value, float):
            if not value.is_integer():
                raise bad
            value = int(value)
        if kind == "uint" and value < 0:
            raise bad
        return value
    if kind in ("float", "double", "floats", "doubles"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if kind in ("string", "bytes"):
        if not isinstance(value, str):
            raise bad
        return value if kind == "string" else value.encode("latin-1")
    raise bad


def normalize_text(message_type: str, raw: Mapping[str, list[Any]], where: str = "") -> dict[str, Any]:
    """A schema-less :func:`~neurovis.caffe.prototxt.parse_prototxt` dict -> the normalized
    dict :func:`decode_message` gives for the same message. Fields the schema does not know
    are kept as their raw list of values.

    Raises:
        NeurovisError: a value of the wrong kind, naming where it is.
    """
    fields = BY_NAME[message_type]
    out: dict[str, Any] = {}
    for name, values in raw.items():
        spec = fields.get(name)
        if spec is None:
            out[name] = values
            continue
        here = f"{where}.{name}" if where else name
        converted = [_text_value(spec.kind, v, here) for v in values]
        if spec.kind in ("floats", "doubles"):
            out[name] = np.asarray(converted, dtype=np.float32 if spec.kind == "floats" else np.float64)
        elif spec.repeated:
            out[name] = converted
        elif converted:
            out[name] = converted[-1]
    return out


# ----------------------------------------------------------------------------- nets
@dataclass
class LayerSpec:
    """One layer: ``name``, V2 ``type`` (``"Convolution"``), ``bottoms``/``tops`` blob names,
    ``params`` (the normalized layer message: ``convolution_param``... ``include``) and
    ``blobs``: numpy float32 arrays in Caffe's shapes (weights first, then bias)."""

    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    params: dict[str, Any]
    blobs: list[np.ndarray] = field(default_factory=list)


@dataclass
class NetSpec:
    """A net: ``inputs`` as ``(blob name, shape or None)`` declared by the ``input`` /
    ``input_shape`` / ``input_dim`` fields (Input layers stay layers), ``layers`` in file
    order (upgraded to V2 form), ``version`` of the file: ``"V2"`` (``layer``), ``"V1"``
    (``layers`` with enum types), ``"V0"`` (``layers { layer { ... } }``) or ``"empty"``,
    and ``upgrade_notes``: what Caffe's upgrade dropped (one line each)."""

    name: str
    inputs: list[tuple[str, tuple[int, ...] | None]]
    layers: list[LayerSpec]
    version: str
    upgrade_notes: list[str] = field(default_factory=list)

    def layer(self, name: str) -> LayerSpec | None:
        return next((lay for lay in self.layers if lay.name == name), None)


def blob_array(blob: Mapping[str, Any], where: str = "blob") -> np.ndarray:
    """A normalized ``BlobProto`` -> float32 array of its shape (``shape.dim`` if set, else
    the legacy 4-D ``num, channels, height, width``)."""
    data = blob.get("data")
    if data is None or len(data) == 0:
        data = blob.get("double_data", np.zeros(0, np.float32))
    data = np.asarray(data, dtype=np.float32)
    if "shape" in blob:
        shape = tuple(int(d) for d in blob["shape"].get("dim", []))
    else:
        shape = tuple(int(blob.get(k, 0)) for k in ("num", "channels", "height", "width"))
        if not any(shape):
            shape = (data.size,)
    if any(d < 0 for d in shape) or math.prod(shape) != data.size:
        raise NeurovisError(f"{where}: shape {shape} does not hold its {data.size} values; the file is corrupt")
    return data.reshape(shape).copy()


def _shape(message: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(int(d) for d in message.get("dim", []))


def _layer_spec(msg: dict[str, Any], index: int) -> LayerSpec:
    layer_type = msg.get("type", "")
    name = msg.get("name", f"layer{index}")
    arrays = [blob_array(b, f"layer {name!r} blob {i}") for i, b in enumerate(msg.get("blobs", []))]
    params = {k: v for k, v in msg.items() if k != "blobs"}
    return LayerSpec(str(name), str(layer_type), list(msg.get("bottom", [])), list(msg.get("top", [])), params, arrays)


def net_spec(net: Mapping[str, Any]) -> NetSpec:
    """A normalized ``NetParameter`` of any generation -> :class:`NetSpec`: V0 and V1 nets
    are first upgraded as Caffe upgrades them (:func:`~neurovis.caffe.upgrade.upgrade_net`),
    so layer types are V2 names and V0 padding layers are folded into convolutions."""
    net, version, notes = upgrade_net(net)
    inputs: list[tuple[str, tuple[int, ...] | None]] = []
    names = list(net.get("input", []))
    shapes = [_shape(s) for s in net.get("input_shape", [])]
    dims = [int(d) for d in net.get("input_dim", [])]
    for i, blob in enumerate(names):
        if i < len(shapes):
            inputs.append((blob, shapes[i]))
        elif len(dims) >= 4 * (i + 1):
            inputs.append((blob, tuple(dims[4 * i : 4 * i + 4])))
        else:
            inputs.append((blob, None))
    layers = [_layer_spec(m, i) for i, m in enumerate(net.get("layer", []))]
    return NetSpec(str(net.get("name", "")), inputs, layers, version, notes)


def parse_net_text(text: str) -> NetSpec:
    """``.prototxt`` text -> :class:`NetSpec` (no blobs)."""
    return net_spec(normalize_text("NetParameter", parse_prototxt(text)))


def read_prototxt(path: str | Path) -> NetSpec:
    """A ``.prototxt`` file -> :class:`NetSpec`; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise NeurovisError(f"cannot read prototxt {path}: {err.strerror or err}") from None
    try:
        return parse_net_text(text)
    except NeurovisError as err:
        raise NeurovisError(f"{path}: {err}") from None


def parse_caffemodel(data: bytes | memoryview) -> NetSpec:
    """Binary ``NetParameter`` bytes -> :class:`NetSpec` with blobs.

    Raises:
        NeurovisError: the bytes are not a NetParameter with at least one layer.
    """
    spec = net_spec(decode_message("NetParameter", data))
    if not spec.layers:
        raise NeurovisError("no layers found (not a Caffe NetParameter)")
    return spec


def read_caffemodel(path: str | Path) -> NetSpec:
    """A ``.caffemodel`` file -> :class:`NetSpec` with blobs; a corrupt or foreign file
    gives a one-line :class:`~neurovis.errors.NeurovisError` naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise NeurovisError(f"cannot read caffemodel {path}: {err.strerror or err}") from None
    try:
        return parse_caffemodel(data)
    except NeurovisError as err:
        raise NeurovisError(
            f"{path} is not a readable Caffe .caffemodel ({err}); check the download (size, checksum)"
        ) from None
