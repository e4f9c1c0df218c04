"""Caffe files without Caffe: read ``.caffemodel`` / ``.prototxt``, convert to PyTorch.

No Caffe and no compiled ``caffe.proto`` are needed: :mod:`~neurovis.caffe.wire` reads and
writes the protobuf wire format, :mod:`~neurovis.caffe.schema` holds the field numbers of
the messages neurovis uses, :mod:`~neurovis.caffe.prototxt` parses the text format,
:mod:`~neurovis.caffe.upgrade` upgrades Caffe's older V0 and V1 net formats as Caffe itself
does, and :mod:`~neurovis.caffe.netparam` turns either file into a :class:`NetSpec`. :func:`build_net` makes an ``nn.Module`` whose submodules
carry the Caffe layer names (``conv1`` ... ``fc8``, ``defc7`` ... ``deconv0``), and
:func:`convert_caffe` / :func:`load_converted` save it as a self-contained ``.pt``.
:mod:`~neurovis.caffe.writer` writes Caffe files (the tests use it).

Typical use (the paper's networks, SPEC §2)::

    convert_caffe("caffenet.prototxt", "bvlc_reference_caffenet.caffemodel", "caffenet.pt")
    net = load_converted("caffenet.pt")   # BGR 0-255 minus mean, 227×227 -> fc8 logits
    convert_caffe("generator.prototxt", "generator.caffemodel", "generator.pt")
    gen = load_converted("generator.pt")  # fc6 code (B, 4096) -> (B, 3, 256, 256) BGR

docs/caffe.md lists the command for each file of the paper's release (CaffeNet, the
generator, Places205-CNN in the V0 format, the LRCN captioner with Embed and LSTM).
"""

from neurovis.caffe.build import CaffeNet, build_net
from neurovis.caffe.convert import FORMAT, add_convert_caffe_parser, convert_caffe, load_converted, read_labels, run_convert_caffe
from neurovis.caffe.netparam import LayerSpec, NetSpec, parse_caffemodel, parse_net_text, read_caffemodel, read_prototxt
from neurovis.caffe.prototxt import parse_prototxt
from neurovis.caffe.writer import caffemodel_bytes, prototxt_text, write_caffemodel, write_prototxt

__all__ = [
    "FORMAT", "CaffeNet", "LayerSpec", "NetSpec", "add_convert_caffe_parser", "build_net", "caffemodel_bytes",
    "convert_caffe", "load_converted", "read_labels", "parse_caffemodel", "parse_net_text", "parse_prototxt", "prototxt_text",
    "read_caffemodel", "read_prototxt", "run_convert_caffe", "write_caffemodel", "write_prototxt",
]
