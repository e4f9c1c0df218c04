"""Write Caffe files: ``.caffemodel`` (binary ``NetParameter``, V2 ``layer``, V1
``layers`` or V0 ``layers { layer {...} }`` form) and ``.prototxt`` (text format), from
plain dicts and numpy blobs.

This is neurovis's own encoder (the tests build synthetic Caffe files with it). A layer is
a dict in Caffe's vocabulary, with V2 type names and an optional ``blobs`` list::

    {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
     "convolution_param": {"num_output": 96, "kernel_size": 11, "stride": 4},
     "blobs": [weight (96, 3, 11, 11), bias (96,)]}

``bottom``/``top`` and other repeated fields take a single value or a list. In the V1
form types become enums (``CONVOLUTION``) and blobs carry the legacy 4-D
``num/channels/height/width`` shape (left-padded with 1s), as old Caffe wrote them. In
the V0 form (``version=0``) types become Caffe's first lower-case strings (``conv``) and
each ``*_param`` is flattened into the V0 fields (``kernelsize``, ``num_output``...), the
inverse of Caffe's upgrade; V0-only layers such as ``{"type": "padding", "pad": 2}`` are
written with their flat fields as given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from neurovis.errors import NeurovisError
from neurovis.caffe.netparam import encode_message
from neurovis.caffe.schema import BY_NAME, ENUMS, V1_TYPE_ENUMS, V1_TYPE_NAMES
from neurovis.caffe.upgrade import V0_FIELDS, V0_TRANSFORM, V0_TYPES

_ESC = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _blob(array: np.ndarray, legacy: bool) -> dict[str, Any]:
    array = np.asarray(array, dtype=np.float32)
    if not legacy:
        return {"shape": {"dim": [int(d) for d in array.shape]}, "data": array.ravel()}
    if array.ndim > 4:
        raise NeurovisError(f"a V1 blob holds at most 4 axes, got shape {array.shape}")
    dims = (1,) * (4 - array.ndim) + tuple(int(d) for d in array.shape)
    return {"num": dims[0], "channels": dims[1], "height": dims[2], "width": dims[3], "data": array.ravel()}


# V2 type name -> V0 type string, and (V0 type, V1 sub-message, field) -> V0 field: the
# inverse of Caffe's V0 upgrade (neurovis.caffe.upgrade), for writing V0 test files.
_V0_TYPE_OF = {V1_TYPE_NAMES[enum]: v0 for v0, enum in V0_TYPES.items()}
_V0_FIELD_OF = {(t, sub, field): v0_field for v0_field, by_type in V0_FIELDS.items()
                for t, (sub, field) in by_type.items()}
_V0_TRANSFORM_OF = {v: k for k, v in V0_TRANSFORM.items()}


def _v0_layer(layer: Mapping[str, Any], with_blobs: bool) -> dict[str, Any]:
    """A layer dict -> a V0 ``layers`` entry ``{"bottom", "top", "layer": {...}}``. V2 type
    names are written as V0 types with their parameters flattened (``convolution_param
    {kernel_size: 3}`` -> ``kernelsize: 3``); a dict whose type is already a V0 string
    (``"padding"``, ``"conv"``...) is written with its flat fields as given."""
    name = layer.get("name")
    kind = layer.get("type", "")
    v0: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for key in ("bottom", "top"):
        if key in layer:
            out[key] = [layer[key]] if isinstance(layer[key], str) else list(layer[key])
    flat = kind in V0_TYPES or kind == "padding"
    v0_kind = kind if flat else _V0_TYPE_OF.get(kind)
    if v0_kind is None:
        raise NeurovisError(f"layer {name!r}: type {kind!r} has no V0 form; write version 1 or 2")
    for key, value in layer.items():
        if key in ("bottom", "top", "blobs"):
            continue
        if key == "type":
            v0["type"] = v0_kind
        elif flat or key == "name":
            v0[key] = value
        elif key == "param":
            for spec in value:
                v0.setdefault("blobs_lr", []).append(spec.get("lr_mult", 1.0))
                v0.setdefault("weight_decay", []).append(spec.get("decay_mult", 1.0))
        elif key.endswith("_param") and isinstance(value, Mapping):
            for field, item in value.items():
                target = _V0_TRANSFORM_OF.get(field) if key == "transform_param" else _V0_FIELD_OF.get((v0_kind, key, field))
                if isinstance(item, (list, tuple)):
                    if len(item) != 1:
                        raise NeurovisError(f"layer {name!r}: {key}.{field} {list(item)} has no V0 form (one value only)")
                    item = item[0]
                if target is None:
                    raise NeurovisError(f"layer {name!r}: {key}.{field} has no V0 form; write version 1 or 2")
                v0[target] = item
        else:
            raise NeurovisError(f"layer {name!r}: {key!r} has no V0 form; write version 1 or 2")
    if with_blobs and layer.get("blobs") is not None:
        v0["blobs"] = [_blob(b, legacy=True) for b in layer["blobs"]]
    out["layer"] = v0
    return out


def layer_message(layer: Mapping[str, Any], version: int = 2, with_blobs: bool = True) -> dict[str, Any]:
    """A layer dict (see module doc) -> a normalized ``LayerParameter`` (``version=2``),
    ``V1LayerParameter`` (``version=1``) or V0 ``layers`` entry (``version=0``, see
    :func:`_v0_layer`) dict for :func:`~neurovis.caffe.netparam.encode_message`."""
    if version == 0:
        return _v0_layer(layer, with_blobs)
    msg = {k: v for k, v in layer.items() if k != "blobs"}
    for key in ("bottom", "top"):
        if isinstance(msg.get(key), str):
            msg[key] = [msg[key]]
    if version == 1:
        type_name = msg.get("type", "")
        if type_name not in V1_TYPE_ENUMS:
            raise NeurovisError(f"layer {msg.get('name')!r}: type {type_name!r} has no V1 form; write version 2")
        msg["type"] = V1_TYPE_ENUMS[type_name]
        specs = msg.pop("param", None)
        if specs and isinstance(specs[0], Mapping):  # V2 ParamSpec -> V1 blobs_lr / weight_decay / param names
            msg["blobs_lr"] = [float(spec.get("lr_mult", 1.0)) for spec in specs]
            msg["weight_decay"] = [float(spec.get("decay_mult", 1.0)) for spec in specs]
            if any("name" in spec for spec in specs):
                msg["param"] = [str(spec.get("name", "")) for spec in specs]
        elif specs:
            msg["param"] = specs
        unknown = set(msg) - set(BY_NAME["V1LayerParameter"])
        if unknown:
            raise NeurovisError(f"layer {msg.get('name')!r}: V1 layers have no {', '.join(sorted(unknown))}")
    if with_blobs and layer.get("blobs") is not None:
        msg["blobs"] = [_blob(b, legacy=version == 1) for b in layer["blobs"]]
    return msg


def net_message(
    layers: Sequence[Mapping[str, Any]],
    *,
    version: int = 2,
    name: str | None = None,
    inputs: Mapping[str, Sequence[int]] | None = None,
    with_blobs: bool = True,
) -> dict[str, Any]:
    """A normalized ``NetParameter`` dict: ``inputs`` become ``input`` + ``input_shape``
    (V2) or ``input`` + 4 ``input_dim`` per input (V1), layers go to ``layer`` / ``layers``."""
    net: dict[str, Any] = {}
    if name:
        net["name"] = name
    if inputs:
        net["input"] = list(inputs)
        if version in (0, 1):
            dims: list[int] = []
            for blob, shape in inputs.items():
                if len(shape) != 4:
                    raise NeurovisError(f"V{version} input {blob!r} needs 4 dims (N, C, H, W), got {tuple(shape)}")
                dims.extend(int(d) for d in shape)
            net["input_dim"] = dims
        else:
            net["input_shape"] = [{"dim": [int(d) for d in shape]} for shape in inputs.values()]
    if version not in (0, 1, 2):
        raise NeurovisError(f"Caffe net files have versions 0, 1 and 2, not {version}")
    key = "layers" if version in (0, 1) else "layer"
    net[key] = [layer_message(lay, version, with_blobs) for lay in layers]
    return net


def caffemodel_bytes(layers: Sequence[Mapping[str, Any]], *, version: int = 2, name: str | None = None,
                     inputs: Mapping[str, Sequence[int]] | None = None) -> bytes:
    """The binary ``.caffemodel`` of ``layers`` (with their ``blobs``)."""
    return encode_message("NetParameter", net_message(layers, version=version, name=name, inputs=inputs))


def write_caffemodel(path: str | Path, layers: Sequence[Mapping[str, Any]], *, version: int = 2,
                     name: str | None = None, inputs: Mapping[str, Sequence[int]] | None = None) -> Path:
    """Write :func:`caffemodel_bytes` to ``path``; returns the path."""
    path = Path(path)
    path.write_bytes(caffemodel_bytes(layers, version=version, name=name, inputs=inputs))
    return path


def _scalar(kind: str, value: Any) -> str:
    if kind.startswith("enum:"):
        return ENUMS[kind[5:]].get(value, str(value)) if isinstance(value, int) else str(value)
    if kind == "bool":
        return "true" if value else "false"
    if kind in ("string", "bytes"):
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        return '"' + "".join(_ESC.get(c, c) for c in text) + '"'
    if kind in ("float", "double", "floats", "doubles"):
        return repr(float(value))
    return str(int(value))


def format_message(message_type: str, message: Mapping[str, Any], indent: int = 0) -> str:
    """A normalized message dict -> protobuf text format (two-space indents)."""
    pad = "  " * indent
    lines: list[str] = []
    fields = BY_NAME[message_type]
    for name, value in message.items():
        spec = fields.get(name)
        if spec is None:
            raise NeurovisError(f"{message_type} has no field {name!r} that neurovis can write; remove it")
        many = spec.repeated and isinstance(value, (list, tuple, np.ndarray))
        for item in (list(np.asarray(value).ravel()) if spec.kind in ("floats", "doubles") else (value if many else [value])):
            if spec.kind.startswith("msg:"):
                body = format_message(spec.kind[4:], item, indent + 1)
                lines.append(f"{pad}{name} {{\n{body}{pad}}}")
            else:
                lines.append(f"{pad}{name}: {_scalar(spec.kind, item)}")
    return "".join(line + "\n" for line in lines)


def prototxt_text(layers: Sequence[Mapping[str, Any]], *, version: int = 2, name: str | None = None,
                  inputs: Mapping[str, Sequence[int]] | None = None) -> str:
    """The ``.prototxt`` text of ``layers`` (blobs left out)."""
    return format_message("NetParameter", net_message(layers, version=version, name=name, inputs=inputs, with_blobs=False))


def write_prototxt(path: str | Path, layers: Sequence[Mapping[str, Any]], *, version: int = 2,
                   name: str | None = None, inputs: Mapping[str, Sequence[int]] | None = None) -> Path:
    """Write :func:`prototxt_text` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(prototxt_text(layers, version=version, name=name, inputs=inputs), encoding="utf-8")
    return path
