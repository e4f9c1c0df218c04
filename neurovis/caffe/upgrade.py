"""Caffe's own upgrade of old net files, on normalized ``NetParameter`` dicts.

Caffe reads three generations of net files and upgrades the older two when it loads them
(``src/caffe/util/upgrade_proto.cpp``, ``UpgradeNetAsNeeded``); neurovis does the same,
in the same order, so any ``.prototxt`` / ``.caffemodel`` pair Caffe loads converts:

* **V0** (``layers { layer { name: "conv1" type: "conv" num_output: 96 kernelsize: 11 }
  bottom: "data" top: "conv1" }``): lower-case string types and flat fields. First every
  ``padding`` layer is removed and its ``pad`` set on the convolution or pooling layer that
  reads its output (whose bottom is rewired to the padding layer's input); then each
  layer becomes a V1 layer: the type an enum (``conv`` -> ``CONVOLUTION``), the flat
  fields moved into the message of that type (``kernelsize`` -> ``convolution_param.
  kernel_size``), ``scale``/``meanfile``/``cropsize``/``mirror`` into ``transform_param``.
* data-layer transformation fields of V1 data layers move into ``transform_param``;
* **V1** (``layers { name type: CONVOLUTION blobs_lr ... }``): enum types become the V2
  strings (``Convolution``), ``blobs_lr`` / ``weight_decay`` / ``param`` names become
  ``param { lr_mult decay_mult name }``, the ``*_param`` messages are kept.

Fields Caffe's upgrade drops with an error message but loads anyway (a V0 field given to
a layer type that has no such parameter) are dropped here too and listed in the
returned notes. What makes Caffe stop (an unknown V0 type, a padding layer feeding
something other than a convolution or pooling, a net with both ``layer`` and ``layers``)
raises a one-line :class:`~neurovis.errors.NeurovisError` naming the layer.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from neurovis.errors import NeurovisError
from neurovis.caffe.schema import BY_NAME, V1_TYPE_NAMES

# V0 type string -> V1 enum name (UpgradeV0LayerType); "padding" is folded away before.
V0_TYPES: dict[str, str] = {
    "accuracy": "ACCURACY", "bnll": "BNLL", "concat": "CONCAT", "conv": "CONVOLUTION", "data": "DATA",
    "dropout": "DROPOUT", "euclidean_loss": "EUCLIDEAN_LOSS", "flatten": "FLATTEN", "hdf5_data": "HDF5_DATA",
    "hdf5_output": "HDF5_OUTPUT", "im2col": "IM2COL", "images": "IMAGE_DATA", "infogain_loss": "INFOGAIN_LOSS",
    "innerproduct": "INNER_PRODUCT", "lrn": "LRN", "multinomial_logistic_loss": "MULTINOMIAL_LOGISTIC_LOSS",
    "pool": "POOLING", "relu": "RELU", "sigmoid": "SIGMOID", "softmax": "SOFTMAX", "softmax_loss": "SOFTMAX_LOSS",
    "split": "SPLIT", "tanh": "TANH", "window_data": "WINDOW_DATA",
}

_DATA = {"data": "data_param", "hdf5_data": "hdf5_data_param", "images": "image_data_param",
         "window_data": "window_data_param"}
_WEIGHTED = {"conv": "convolution_param", "innerproduct": "inner_product_param"}
_WINDOW = {"window_data": "window_data_param"}

# V0 field -> {V0 type: (V1 sub-message, its field)}, as UpgradeV0LayerParameter moves them.
V0_FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "num_output": {t: (m, "num_output") for t, m in _WEIGHTED.items()},
    "biasterm": {t: (m, "bias_term") for t, m in _WEIGHTED.items()},
    "weight_filler": {t: (m, "weight_filler") for t, m in _WEIGHTED.items()},
    "bias_filler": {t: (m, "bias_filler") for t, m in _WEIGHTED.items()},
    "pad": {"conv": ("convolution_param", "pad"), "pool": ("pooling_param", "pad")},
    "kernelsize": {"conv": ("convolution_param", "kernel_size"), "pool": ("pooling_param", "kernel_size")},
    "group": {"conv": ("convolution_param", "group")},
    "stride": {"conv": ("convolution_param", "stride"), "pool": ("pooling_param", "stride")},
    "pool": {"pool": ("pooling_param", "pool")},
    "dropout_ratio": {"dropout": ("dropout_param", "dropout_ratio")},
    "local_size": {"lrn": ("lrn_param", "local_size")},
    "alpha": {"lrn": ("lrn_param", "alpha")},
    "beta": {"lrn": ("lrn_param", "beta")},
    "k": {"lrn": ("lrn_param", "k")},
    "source": {**{t: (m, "source") for t, m in _DATA.items()}, "infogain_loss": ("infogain_loss_param", "source")},
    "batchsize": {t: (m, "batch_size") for t, m in _DATA.items()},
    "rand_skip": {"data": ("data_param", "rand_skip"), "images": ("image_data_param", "rand_skip")},
    "shuffle_images": {"images": ("image_data_param", "shuffle")},
    "new_height": {"images": ("image_data_param", "new_height")},
    "new_width": {"images": ("image_data_param", "new_width")},
    "concat_dim": {"concat": ("concat_param", "concat_dim")},
    "det_fg_threshold": {t: (m, "fg_threshold") for t, m in _WINDOW.items()},
    "det_bg_threshold": {t: (m, "bg_threshold") for t, m in _WINDOW.items()},
    "det_fg_fraction": {t: (m, "fg_fraction") for t, m in _WINDOW.items()},
    "det_context_pad": {t: (m, "context_pad") for t, m in _WINDOW.items()},
    "det_crop_mode": {t: (m, "crop_mode") for t, m in _WINDOW.items()},
}
# V0 fields that go to transform_param whatever the type.
V0_TRANSFORM: dict[str, str] = {"scale": "scale", "meanfile": "mean_file", "cropsize": "crop_size", "mirror": "mirror"}
# V0 fields Caffe's upgrade does not carry over (no V1 home), silently.
_V0_IGNORED = frozenset({"name", "type", "blobs", "blobs_lr", "weight_decay", "new_num", "new_channels",
                         "hdf5_output_param"})

# The message type of each V1 sub-message (for repeated-ness of its fields).
_SUB_TYPES: dict[str, str] = {f.name: f.kind[4:] for f in BY_NAME["V1LayerParameter"].values()
                              if f.kind.startswith("msg:") and f.name.endswith("_param")}


def _layer_name(conn: Mapping[str, Any], index: int) -> str:
    return str(conn.get("layer", {}).get("name") or conn.get("name") or f"layer{index}")


def _set(message: dict[str, Any], sub: str, field: str, value: Any) -> None:
    """``message[sub][field] = value``, appended when the schema says the field repeats."""
    target = message.setdefault(sub, {})
    spec = BY_NAME.get(_SUB_TYPES.get(sub, ""), {}).get(field)
    if spec is not None and spec.repeated:
        target.setdefault(field, []).append(value)
    else:
        target[field] = value


def needs_v0_upgrade(net: Mapping[str, Any]) -> bool:
    """Caffe's ``NetNeedsV0ToV1Upgrade``: some ``layers`` entry has a V0 ``layer``."""
    return any("layer" in conn for conn in net.get("layers", []))


def fold_padding(net: Mapping[str, Any]) -> dict[str, Any]:
    """Caffe's ``UpgradeV0PaddingLayers``: a copy of the V0 ``net`` without ``padding``
    layers, each one's ``pad`` set on the convolution/pooling layer reading its output.

    Raises:
        NeurovisError: a bottom no earlier layer or input produces, or a padding layer
            read by another type or with several blobs, naming the layer.
    """
    out = {k: v for k, v in net.items() if k != "layers"}
    layers = list(net.get("layers", []))
    last_top: dict[str, int] = {blob: -1 for blob in net.get("input", [])}
    kept: list[dict[str, Any]] = []
    for i, conn in enumerate(layers):
        v0 = conn.get("layer", {})
        name = _layer_name(conn, i)
        if v0.get("type") != "padding":
            kept.append(dict(conn, bottom=list(conn.get("bottom", [])), layer=dict(v0)))
        for j, blob in enumerate(conn.get("bottom", [])):
            if blob not in last_top:
                raise NeurovisError(f"V0 layer {name!r}: bottom blob {blob!r} comes from no earlier layer or input")
            source_index = last_top[blob]
            if source_index == -1:
                continue
            source = layers[source_index]
            if source.get("layer", {}).get("type") != "padding":
                continue
            if v0.get("type") not in ("conv", "pool"):
                raise NeurovisError(f"V0 layer {name!r} of type {v0.get('type')!r} reads padding layer "
                                    f"{_layer_name(source, source_index)!r}; Caffe folds padding only into conv and pool layers")
            if len(conn.get("bottom", [])) != 1 or len(source.get("bottom", [])) != 1 or len(source.get("top", [])) != 1:
                raise NeurovisError(f"V0 layer {name!r}: the padding layer before it and the layer itself must each "
                                    "have one bottom and one top")
            kept[-1]["layer"]["pad"] = source["layer"].get("pad", 0)
            kept[-1]["bottom"][j] = source["bottom"][0]
        for blob in conn.get("top", []):
            last_top[blob] = i
    out["layers"] = kept
    return out


def upgrade_v0_layer(conn: Mapping[str, Any], index: int, notes: list[str]) -> dict[str, Any]:
    """Caffe's ``UpgradeV0LayerParameter``: one V0 ``layers`` entry -> a V1 layer dict.

    Raises:
        NeurovisError: a V0 type Caffe does not know, naming the layer.
    """
    layer: dict[str, Any] = {}
    if "bottom" in conn:
        layer["bottom"] = list(conn["bottom"])
    if "top" in conn:
        layer["top"] = list(conn["top"])
    v0 = conn.get("layer")
    if v0 is None:
        return layer
    name = _layer_name(conn, index)
    if "name" in v0:
        layer["name"] = v0["name"]
    kind = v0.get("type", "")
    if "type" in v0:
        if kind not in V0_TYPES:
            raise NeurovisError(f"layer {name!r} has V0 type {kind!r}, which Caffe's upgrade does not know "
                                f"(V0 types: {', '.join(sorted(V0_TYPES))}, padding)")
        layer["type"] = V0_TYPES[kind]
    for key in ("blobs", "blobs_lr", "weight_decay"):
        if v0.get(key):
            layer[key] = list(v0[key])
    for key, value in v0.items():
        if key in _V0_IGNORED:
            continue
        if key in V0_TRANSFORM:
            layer.setdefault("transform_param", {})[V0_TRANSFORM[key]] = value
        elif key in V0_FIELDS and kind in V0_FIELDS[key]:
            sub, field = V0_FIELDS[key][kind]
            _set(layer, sub, field, value)
        else:
            notes.append(f"layer {name!r}: V0 field {key!r} has no meaning for type {kind!r}; dropped as Caffe drops it")
    return layer


def upgrade_v0(net: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    """Caffe's ``UpgradeV0Net``: padding folded, every layer upgraded to V1; the net keeps
    only ``name``, ``input``, ``input_dim`` and ``force_backward``, as in Caffe."""
    folded = fold_padding(net)
    out: dict[str, Any] = {k: folded[k] for k in ("name", "input", "input_dim", "force_backward") if k in folded}
    out["layers"] = [upgrade_v0_layer(conn, i, notes) for i, conn in enumerate(folded["layers"])]
    return out


_DATA_TYPES = {"DATA": "data_param", "IMAGE_DATA": "image_data_param", "WINDOW_DATA": "window_data_param"}


def upgrade_data_transformation(net: dict[str, Any]) -> None:
    """Caffe's ``UpgradeNetDataTransformation``: ``scale``, ``mean_file``, ``crop_size``,
    ``mirror`` of V1 data layers' own parameters move into ``transform_param`` (in place)."""
    for layer in net.get("layers", []):
        sub = _DATA_TYPES.get(layer.get("type"))
        value = layer.get(sub) if sub else None
        if isinstance(value, list):  # a message the schema does not know, kept raw from text
            value = {k: v for item in value if isinstance(item, dict) for k, v in item.items()}
        if not isinstance(value, dict):
            continue
        params = layer[sub] = dict(value)
        for key in ("scale", "mean_file", "crop_size", "mirror"):
            if key in params:
                value = params.pop(key)
                layer.setdefault("transform_param", {})[key] = value[-1] if isinstance(value, list) else value


def upgrade_v1_layer(v1: Mapping[str, Any], index: int, notes: list[str]) -> dict[str, Any]:
    """Caffe's ``UpgradeV1LayerParameter``: one V1 layer dict -> a V2 (``LayerParameter``)
    dict. Unknown enum types become ``"V1 type <n>"``, which the builder then names."""
    layer: dict[str, Any] = {}
    for key in ("bottom", "top"):
        if key in v1:
            layer[key] = list(v1[key])
    if "name" in v1:
        layer["name"] = v1["name"]
    for key in ("include", "exclude"):
        if v1.get(key):
            layer[key] = copy.deepcopy(list(v1[key]))
    if "type" in v1:
        layer["type"] = V1_TYPE_NAMES.get(v1["type"], f"V1 type {v1['type']}")
    if v1.get("blobs"):
        layer["blobs"] = list(v1["blobs"])
    params: list[dict[str, Any]] = []

    def spec(i: int) -> dict[str, Any]:
        while len(params) <= i:
            params.append({})
        return params[i]

    for i, value in enumerate(v1.get("param", [])):
        spec(i)["name"] = value
    for i, value in enumerate(v1.get("blob_share_mode", [])):
        spec(i)["share_mode"] = value
    for i, value in enumerate(v1.get("blobs_lr", [])):
        spec(i)["lr_mult"] = value
    for i, value in enumerate(v1.get("weight_decay", [])):
        spec(i)["decay_mult"] = value
    if params:
        layer["param"] = params
    if v1.get("loss_weight"):
        layer["loss_weight"] = list(v1["loss_weight"])
    for key, value in v1.items():
        if key.endswith("_param"):
            layer[key] = copy.deepcopy(value)
    if "layer" in v1:
        notes.append(f"layer {_layer_name(v1, index)!r}: a V1 layer holding a V0 layer; the V0 part is ignored, as Caffe does")
    return layer


def upgrade_net(net: Mapping[str, Any]) -> tuple[dict[str, Any], str, list[str]]:
    """A normalized ``NetParameter`` of any generation -> ``(V2 net, original version,
    notes)``, following ``UpgradeNetAsNeeded``; version is ``"V0"``, ``"V1"``, ``"V2"``
    or ``"empty"``. The input fields (``input``, ``input_shape``, ``input_dim``) are left
    for :func:`~neurovis.caffe.netparam.net_spec`.

    Raises:
        NeurovisError: a net Caffe would refuse to upgrade (see the module doc).
    """
    notes: list[str] = []
    work: dict[str, Any] = dict(net)
    version = "V2" if work.get("layer") else "empty"
    if needs_v0_upgrade(work):
        version = "V0"
        if work.get("layer"):
            raise NeurovisError("the net has both 'layer' and V0 'layers' entries; Caffe refuses it: keep one form")
        work = upgrade_v0(work, notes)
    if work.get("layers"):
        if work.get("layer"):
            raise NeurovisError("the net has both 'layer' (V2) and 'layers' (V1) entries; Caffe refuses to upgrade it: "
                                "keep one form")
        version = "V0" if version == "V0" else "V1"
        work["layers"] = [dict(layer) for layer in work["layers"]]
        upgrade_data_transformation(work)
        work["layer"] = [upgrade_v1_layer(layer, i, notes) for i, layer in enumerate(work.pop("layers"))]
    return work, version, notes
