"""The part of ``caffe.proto`` neurovis needs, as plain tables (no compiled proto).

Field numbers, kinds and defaults follow BVLC Caffe's ``src/caffe/proto/caffe.proto``
(``NetParameter``, ``LayerParameter``, the deprecated ``V1LayerParameter`` and the
parameters of the layers :mod:`neurovis.caffe.build` supports). Fields not listed here are
skipped when reading a ``.caffemodel`` and kept as raw values when reading a ``.prototxt``.

Kinds: ``string``, ``bytes``, ``bool``, ``uint`` (unsigned varint), ``int`` (signed
varint: int32 and int64 both encode negatives as 10-byte two's complement), ``float``
(fixed32), ``double`` (fixed64), ``enum:<Enum>``, ``msg:<Message>`` and the array kinds
``floats`` / ``doubles`` (repeated, packed, decoded to numpy arrays).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Field:
    """One field of a message: number, name, kind, repeated/packed and its default."""

    number: int
    name: str
    kind: str
    repeated: bool = False
    default: Any = None
    packed: bool = False


def _f(number: int, name: str, kind: str, default: Any = None) -> Field:
    return Field(number, name, kind, False, default)


def _r(number: int, name: str, kind: str, packed: bool = False) -> Field:
    return Field(number, name, kind, True, None, packed)


ENUMS: dict[str, dict[int, str]] = {
    "Phase": {0: "TRAIN", 1: "TEST"},
    "DimCheckMode": {0: "STRICT", 1: "PERMISSIVE"},
    "Engine": {0: "DEFAULT", 1: "CAFFE", 2: "CUDNN"},
    "VarianceNorm": {0: "FAN_IN", 1: "FAN_OUT", 2: "AVERAGE"},
    "PoolMethod": {0: "MAX", 1: "AVE", 2: "STOCHASTIC"},
    "RoundMode": {0: "CEIL", 1: "FLOOR"},
    "NormRegion": {0: "ACROSS_CHANNELS", 1: "WITHIN_CHANNEL"},
    "EltwiseOp": {0: "PROD", 1: "SUM", 2: "MAX"},
    "V0PoolMethod": {0: "MAX", 1: "AVE", 2: "STOCHASTIC"},
    "V1LayerType": {
        0: "NONE", 35: "ABSVAL", 1: "ACCURACY", 30: "ARGMAX", 2: "BNLL", 3: "CONCAT",
        37: "CONTRASTIVE_LOSS", 4: "CONVOLUTION", 5: "DATA", 39: "DECONVOLUTION", 6: "DROPOUT",
        32: "DUMMY_DATA", 7: "EUCLIDEAN_LOSS", 25: "ELTWISE", 38: "EXP", 8: "FLATTEN",
        9: "HDF5_DATA", 10: "HDF5_OUTPUT", 28: "HINGE_LOSS", 11: "IM2COL", 12: "IMAGE_DATA",
        13: "INFOGAIN_LOSS", 14: "INNER_PRODUCT", 15: "LRN", 29: "MEMORY_DATA",
        16: "MULTINOMIAL_LOGISTIC_LOSS", 34: "MVN", 17: "POOLING", 26: "POWER", 18: "RELU",
        19: "SIGMOID", 27: "SIGMOID_CROSS_ENTROPY_LOSS", 36: "SILENCE", 20: "SOFTMAX",
        21: "SOFTMAX_LOSS", 22: "SPLIT", 33: "SLICE", 23: "TANH", 24: "WINDOW_DATA", 31: "THRESHOLD",
    },
}

# V1 enum name -> the V2 type string Caffe's own upgrade (UpgradeV1LayerType) gives it.
V1_TYPE_NAMES: dict[str, str] = {
    "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DATA": "Data", "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN", "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
    "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}
V1_TYPE_ENUMS: dict[str, str] = {v: k for k, v in V1_TYPE_NAMES.items() if v}

_ENGINE = "enum:Engine"

MESSAGES: dict[str, tuple[Field, ...]] = {
    "BlobShape": (_r(1, "dim", "int", packed=True),),
    "BlobProto": (
        _f(7, "shape", "msg:BlobShape"),
        _r(5, "data", "floats", packed=True),
        _r(8, "double_data", "doubles", packed=True),
        _f(1, "num", "int", 0),
        _f(2, "channels", "int", 0),
        _f(3, "height", "int", 0),
        _f(4, "width", "int", 0),
    ),
    "NetState": (_f(1, "phase", "enum:Phase", "TEST"), _f(2, "level", "int", 0), _r(3, "stage", "string")),
    "NetStateRule": (
        _f(1, "phase", "enum:Phase"),
        _f(2, "min_level", "int"),
        _f(3, "max_level", "int"),
        _r(4, "stage", "string"),
        _r(5, "not_stage", "string"),
    ),
    "ParamSpec": (
        _f(1, "name", "string"),
        _f(2, "share_mode", "enum:DimCheckMode"),
        _f(3, "lr_mult", "float", 1.0),
        _f(4, "decay_mult", "float", 1.0),
    ),
    "FillerParameter": (
        _f(1, "type", "string", "constant"),
        _f(2, "value", "float", 0.0),
        _f(3, "min", "float", 0.0),
        _f(4, "max", "float", 1.0),
        _f(5, "mean", "float", 0.0),
        _f(6, "std", "float", 1.0),
        _f(7, "sparse", "int", -1),
        _f(8, "variance_norm", "enum:VarianceNorm", "FAN_IN"),
    ),
    "TransformationParameter": (
        _f(1, "scale", "float", 1.0),
        _f(2, "mirror", "bool", False),
        _f(3, "crop_size", "uint", 0),
        _f(4, "mean_file", "string"),
        _r(5, "mean_value", "float"),
        _f(6, "force_color", "bool", False),
        _f(7, "force_gray", "bool", False),
    ),
    "ConvolutionParameter": (
        _f(1, "num_output", "uint"),
        _f(2, "bias_term", "bool", True),
        _r(3, "pad", "uint"),
        _r(4, "kernel_size", "uint"),
        _r(6, "stride", "uint"),
        _r(18, "dilation", "uint"),
        _f(9, "pad_h", "uint", 0),
        _f(10, "pad_w", "uint", 0),
        _f(11, "kernel_h", "uint"),
        _f(12, "kernel_w", "uint"),
        _f(13, "stride_h", "uint"),
        _f(14, "stride_w", "uint"),
        _f(5, "group", "uint", 1),
        _f(7, "weight_filler", "msg:FillerParameter"),
        _f(8, "bias_filler", "msg:FillerParameter"),
        _f(15, "engine", _ENGINE, "DEFAULT"),
        _f(16, "axis", "int", 1),
        _f(17, "force_nd_im2col", "bool", False),
    ),
    "PoolingParameter": (
        _f(1, "pool", "enum:PoolMethod", "MAX"),
        _r(4, "pad", "uint"),  # optional in BVLC Caffe, repeated in some forks: same bytes
        _f(9, "pad_h", "uint", 0),
        _f(10, "pad_w", "uint", 0),
        _r(2, "kernel_size", "uint"),
        _f(5, "kernel_h", "uint"),
        _f(6, "kernel_w", "uint"),
        _r(3, "stride", "uint"),
        _f(7, "stride_h", "uint"),
        _f(8, "stride_w", "uint"),
        _f(11, "engine", _ENGINE, "DEFAULT"),
        _f(12, "global_pooling", "bool", False),
        _f(13, "round_mode", "enum:RoundMode", "CEIL"),
    ),
    "InnerProductParameter": (
        _f(1, "num_output", "uint"),
        _f(2, "bias_term", "bool", True),
        _f(3, "weight_filler", "msg:FillerParameter"),
        _f(4, "bias_filler", "msg:FillerParameter"),
        _f(5, "axis", "int", 1),
        _f(6, "transpose", "bool", False),
    ),
    "LRNParameter": (
        _f(1, "local_size", "uint", 5),
        _f(2, "alpha", "float", 1.0),
        _f(3, "beta", "float", 0.75),
        _f(4, "norm_region", "enum:NormRegion", "ACROSS_CHANNELS"),
        _f(5, "k", "float", 1.0),
        _f(6, "engine", _ENGINE, "DEFAULT"),
    ),
    "ReshapeParameter": (
        _f(1, "shape", "msg:BlobShape"),
        _f(2, "axis", "int", 0),
        _f(3, "num_axes", "int", -1),
    ),
    "ReLUParameter": (_f(1, "negative_slope", "float", 0.0), _f(2, "engine", _ENGINE, "DEFAULT")),
    "DropoutParameter": (_f(1, "dropout_ratio", "float", 0.5),),
    "SoftmaxParameter": (_f(1, "engine", _ENGINE, "DEFAULT"), _f(2, "axis", "int", 1)),
    "InputParameter": (_r(1, "shape", "msg:BlobShape"),),
    "CropParameter": (_f(1, "axis", "int", 2), _r(2, "offset", "uint")),
    "LogParameter": (_f(1, "base", "float", -1.0), _f(2, "scale", "float", 1.0), _f(3, "shift", "float", 0.0)),
    "PowerParameter": (_f(1, "power", "float", 1.0), _f(2, "scale", "float", 1.0), _f(3, "shift", "float", 0.0)),
    "ConcatParameter": (_f(2, "axis", "int", 1), _f(1, "concat_dim", "uint", 1)),
    "EltwiseParameter": (
        _f(1, "operation", "enum:EltwiseOp", "SUM"),
        _r(2, "coeff", "float"),
        _f(3, "stable_prod_grad", "bool", True),
    ),
    "FlattenParameter": (_f(1, "axis", "int", 1), _f(2, "end_axis", "int", -1)),
    "ELUParameter": (_f(1, "alpha", "float", 1.0),),
    "EmbedParameter": (
        _f(1, "num_output", "uint"),
        _f(2, "input_dim", "uint"),
        _f(3, "bias_term", "bool", True),
        _f(4, "weight_filler", "msg:FillerParameter"),
        _f(5, "bias_filler", "msg:FillerParameter"),
    ),
    "RecurrentParameter": (
        _f(1, "num_output", "uint", 0),
        _f(2, "weight_filler", "msg:FillerParameter"),
        _f(3, "bias_filler", "msg:FillerParameter"),
        _f(4, "debug_info", "bool", False),
        _f(5, "expose_hidden", "bool", False),
    ),
    "LayerParameter": (
        _f(1, "name", "string"),
        _f(2, "type", "string"),
        _r(3, "bottom", "string"),
        _r(4, "top", "string"),
        _f(10, "phase", "enum:Phase"),
        _r(5, "loss_weight", "float"),
        _r(6, "param", "msg:ParamSpec"),
        _r(7, "blobs", "msg:BlobProto"),
        _r(11, "propagate_down", "bool"),
        _r(8, "include", "msg:NetStateRule"),
        _r(9, "exclude", "msg:NetStateRule"),
        _f(100, "transform_param", "msg:TransformationParameter"),
        _f(104, "concat_param", "msg:ConcatParameter"),
        _f(106, "convolution_param", "msg:ConvolutionParameter"),
        _f(144, "crop_param", "msg:CropParameter"),
        _f(108, "dropout_param", "msg:DropoutParameter"),
        _f(110, "eltwise_param", "msg:EltwiseParameter"),
        _f(140, "elu_param", "msg:ELUParameter"),
        _f(137, "embed_param", "msg:EmbedParameter"),
        _f(135, "flatten_param", "msg:FlattenParameter"),
        _f(117, "inner_product_param", "msg:InnerProductParameter"),
        _f(143, "input_param", "msg:InputParameter"),
        _f(134, "log_param", "msg:LogParameter"),
        _f(118, "lrn_param", "msg:LRNParameter"),
        _f(121, "pooling_param", "msg:PoolingParameter"),
        _f(122, "power_param", "msg:PowerParameter"),
        _f(123, "relu_param", "msg:ReLUParameter"),
        _f(133, "reshape_param", "msg:ReshapeParameter"),
        _f(146, "recurrent_param", "msg:RecurrentParameter"),
        _f(125, "softmax_param", "msg:SoftmaxParameter"),
    ),
    # Caffe's first format (``layers { layer { name type ... } bottom top }``), read only to
    # be upgraded (:mod:`neurovis.caffe.upgrade`); HDF5OutputParameter (1001) is skipped.
    "V0LayerParameter": (
        _f(1, "name", "string"),
        _f(2, "type", "string"),
        _f(3, "num_output", "uint"),
        _f(4, "biasterm", "bool", True),
        _f(5, "weight_filler", "msg:FillerParameter"),
        _f(6, "bias_filler", "msg:FillerParameter"),
        _f(7, "pad", "uint", 0),
        _f(8, "kernelsize", "uint"),
        _f(9, "group", "uint", 1),
        _f(10, "stride", "uint", 1),
        _f(11, "pool", "enum:V0PoolMethod", "MAX"),
        _f(12, "dropout_ratio", "float", 0.5),
        _f(13, "local_size", "uint", 5),
        _f(14, "alpha", "float", 1.0),
        _f(15, "beta", "float", 0.75),
        _f(22, "k", "float", 1.0),
        _f(16, "source", "string"),
        _f(17, "scale", "float", 1.0),
        _f(18, "meanfile", "string"),
        _f(19, "batchsize", "uint"),
        _f(20, "cropsize", "uint", 0),
        _f(21, "mirror", "bool", False),
        _r(50, "blobs", "msg:BlobProto"),
        _r(51, "blobs_lr", "float"),
        _r(52, "weight_decay", "float"),
        _f(53, "rand_skip", "uint", 0),
        _f(54, "det_fg_threshold", "float", 0.5),
        _f(55, "det_bg_threshold", "float", 0.5),
        _f(56, "det_fg_fraction", "float", 0.25),
        _f(58, "det_context_pad", "uint", 0),
        _f(59, "det_crop_mode", "string", "warp"),
        _f(60, "new_num", "int", 0),
        _f(61, "new_channels", "int", 0),
        _f(62, "new_height", "int", 0),
        _f(63, "new_width", "int", 0),
        _f(64, "shuffle_images", "bool", False),
        _f(65, "concat_dim", "uint", 1),
    ),
    "V1LayerParameter": (
        _r(2, "bottom", "string"),
        _r(3, "top", "string"),
        _f(4, "name", "string"),
        _r(32, "include", "msg:NetStateRule"),
        _r(33, "exclude", "msg:NetStateRule"),
        _f(5, "type", "enum:V1LayerType"),
        _r(6, "blobs", "msg:BlobProto"),
        _r(1001, "param", "string"),
        _r(1002, "blob_share_mode", "enum:DimCheckMode"),
        _r(7, "blobs_lr", "float"),
        _r(8, "weight_decay", "float"),
        _r(35, "loss_weight", "float"),
        _f(9, "concat_param", "msg:ConcatParameter"),
        _f(10, "convolution_param", "msg:ConvolutionParameter"),
        _f(12, "dropout_param", "msg:DropoutParameter"),
        _f(24, "eltwise_param", "msg:EltwiseParameter"),
        _f(17, "inner_product_param", "msg:InnerProductParameter"),
        _f(18, "lrn_param", "msg:LRNParameter"),
        _f(19, "pooling_param", "msg:PoolingParameter"),
        _f(21, "power_param", "msg:PowerParameter"),
        _f(30, "relu_param", "msg:ReLUParameter"),
        _f(39, "softmax_param", "msg:SoftmaxParameter"),
        _f(36, "transform_param", "msg:TransformationParameter"),
        _f(1, "layer", "msg:V0LayerParameter"),
    ),
    "NetParameter": (
        _f(1, "name", "string"),
        _r(3, "input", "string"),
        _r(8, "input_shape", "msg:BlobShape"),
        _r(4, "input_dim", "int"),
        _f(5, "force_backward", "bool", False),
        _f(6, "state", "msg:NetState"),
        _f(7, "debug_info", "bool", False),
        _r(100, "layer", "msg:LayerParameter"),
        _r(2, "layers", "msg:V1LayerParameter"),
    ),
}

BY_NUMBER: dict[str, dict[int, Field]] = {m: {f.number: f for f in fs} for m, fs in MESSAGES.items()}
BY_NAME: dict[str, dict[str, Field]] = {m: {f.name: f for f in fs} for m, fs in MESSAGES.items()}
ENUM_VALUES: dict[str, dict[str, int]] = {e: {n: v for v, n in vals.items()} for e, vals in ENUMS.items()}


def get(message: dict, message_type: str, name: str) -> Any:
    """``message[name]``, or the field's default (``[]`` for repeated fields) when absent."""
    if name in message:
        return message[name]
    field = BY_NAME[message_type][name]
    return [] if field.repeated else field.default
