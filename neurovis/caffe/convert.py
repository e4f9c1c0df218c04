"""``.prototxt`` + ``.caffemodel`` -> a self-contained PyTorch ``.pt``, and back to a module.

The ``.pt`` is a plain dict that ``torch.load(path, weights_only=True)`` reads::

    {"format": "neurovis.caffe/1",
     "prototxt": the prototxt text,
     "state_dict": {"conv1.weight": tensor, ...},   # CaffeNet's parameters, Caffe layouts
     "options": {"output": str | None, "strip_softmax": bool, "input_shapes": {...} | None},
     "pixel_space": {"channels", "scale", "mean", "std", "size", "name"} | None,  # an override
     "source": {"prototxt": path, "caffemodel": path, "caffemodel_version": "V0" | "V1" | "V2",
                "net_name": str}}

:func:`load_converted` rebuilds the :class:`~neurovis.caffe.build.CaffeNet` from the text
and assigns the tensors, so the file needs neither Caffe nor the original files.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from neurovis._utils.weights import load_weights_file
from neurovis.caffe.build import CaffeNet, build_net
from neurovis.caffe.netparam import blob_array, decode_message, parse_net_text, read_caffemodel
from neurovis.chains import atomic_path
from neurovis.errors import NeurovisError
from neurovis.pixels import PixelSpace

FORMAT = "neurovis.caffe/1"


def _space_to_dict(space: PixelSpace | None) -> dict[str, Any] | None:
    if space is None:
        return None
    return {"channels": space.channels, "scale": float(space.scale), "mean": [float(m) for m in space.mean],
            "std": [float(s) for s in space.std], "size": list(space.size) if space.size else None, "name": space.name}


def _space_from_dict(data: Mapping[str, Any] | None) -> PixelSpace | None:
    if not data:
        return None
    size = tuple(int(v) for v in data["size"]) if data.get("size") else None
    return PixelSpace(data["channels"], float(data["scale"]), tuple(data["mean"]), tuple(data["std"]), size, data["name"])  # type: ignore[arg-type]


def read_mean_file(path: str | os.PathLike[str]) -> tuple[float, ...]:
    """The per-channel mean of a Caffe mean image (``.binaryproto``: a ``BlobProto``
    ``(1, C, H, W)`` in the net's channel order, 0-255), e.g. Places205's mean image
    -> ``(B, G, R)``; the average over the image, as the paper's code uses its mean file.

    Raises:
        NeurovisError: the file is unreadable or not a 1- or 3-channel mean image.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise NeurovisError(f"cannot read mean file {path}: {err.strerror or err}") from None
    try:
        blob = blob_array(decode_message("BlobProto", data), "mean")
    except NeurovisError as err:
        raise NeurovisError(f"{path} is not a Caffe mean .binaryproto ({err})") from None
    if blob.ndim == 4 and blob.shape[0] == 1:
        blob = blob[0]
    if blob.ndim != 3 or blob.shape[0] not in (1, 3) or blob.size == 0:
        raise NeurovisError(f"{path}: a mean image of shape {tuple(blob.shape)}; expected (1, 3, H, W) or (1, 1, H, W)")
    return tuple(float(m) for m in blob.reshape(blob.shape[0], -1).astype(np.float64).mean(1))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise NeurovisError(f"cannot read prototxt {path}: {err.strerror or err}") from None


def _convert(
    prototxt: Path,
    caffemodel: Path,
    out: Path,
    force: bool,
    output: str | None,
    strip_softmax: bool,
    input_shapes: Mapping[str, Sequence[int]] | None,
    pixel_space: PixelSpace | None,
    class_names: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
) -> tuple[Path, CaffeNet]:
    out = Path(out)
    if out.is_dir():
        raise NeurovisError(f"--out {out} is a folder; give a file name such as {out / 'net.pt'}")
    if out.exists() and not force:
        raise NeurovisError(f"{out} exists; pass --force (force=True) to replace it")
    text = _read_text(Path(prototxt))
    try:
        spec = parse_net_text(text)
    except NeurovisError as err:
        raise NeurovisError(f"{prototxt}: {err}") from None
    weights = read_caffemodel(caffemodel)
    try:
        model = build_net(spec, weights, output=output, strip_softmax=strip_softmax,
                          input_shapes=input_shapes, pixel_space=pixel_space)
    except NeurovisError as err:
        raise NeurovisError(f"{prototxt}: {err}") from None
    if mean is not None:
        base = getattr(model, "pixel_space", None)
        if not isinstance(base, PixelSpace) or getattr(model, "code_shape", None) is not None:
            raise NeurovisError(f"{prototxt}: a mean applies to a net reading images; this one's input is not an image")
        if len(mean) != base.n_channels:
            raise NeurovisError(f"a mean of {len(mean)} channel(s) for a net reading {base.n_channels}")
        pixel_space = replace(base, mean=tuple(float(m) for m in mean), name=f"{base.channels} 0-255 minus the file's mean")
        model.pixel_space = pixel_space
    if class_names and getattr(model, "input_size", None):
        with torch.no_grad():
            n_out = model(torch.zeros(1, *model.input_size)).shape[-1]
        if n_out != len(class_names):
            raise NeurovisError(f"{len(class_names)} class names for a net with {n_out} outputs; pass the matching labels file")
    payload = {
        "format": FORMAT,
        "prototxt": text,
        "state_dict": {k: v.detach().contiguous() for k, v in model.state_dict().items()},
        "options": {
            "output": output,
            "strip_softmax": bool(strip_softmax),
            "input_shapes": {k: [int(d) for d in v] for k, v in input_shapes.items()} if input_shapes else None,
        },
        "pixel_space": _space_to_dict(pixel_space),
        "source": {"prototxt": str(prototxt), "caffemodel": str(caffemodel),
                   "caffemodel_version": weights.version, "net_name": spec.name},
        "class_names": list(class_names) if class_names else None,
    }
    final, tmp = atomic_path(out)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final, model


def convert_caffe(
    prototxt: Path,
    caffemodel: Path,
    out: Path,
    force: bool = False,
    *,
    output: str | None = None,
    strip_softmax: bool = True,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    pixel_space: PixelSpace | None = None,
    class_names: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
) -> Path:
    """Convert a Caffe net to a neurovis ``.pt`` (see the module doc), written atomically.

    Args:
        prototxt: the deploy ``.prototxt`` (V0, V1 or V2 form; older forms are upgraded
            as Caffe upgrades them).
        caffemodel: the trained ``.caffemodel`` (V0, V1 or V2), matched to the prototxt
            by layer name.
        out: the ``.pt`` to write.
        force: replace ``out`` if it exists.
        output, strip_softmax, input_shapes, pixel_space: as in
            :func:`~neurovis.caffe.build.build_net`.
        class_names: the output classes' names (e.g. from :func:`read_labels`), stored in
            the file and set as ``model.class_names`` on loading.
        mean: per-channel mean (net channel order, 0-255) replacing the inferred pixel
            convention's, e.g. :func:`read_mean_file` of the Places205 mean image.

    Returns:
        ``out``.

    Raises:
        NeurovisError: ``out`` exists without ``force``; unreadable or mismatched files;
            unsupported layers (each a one-line message).
    """
    return _convert(Path(prototxt), Path(caffemodel), Path(out), force, output, strip_softmax, input_shapes, pixel_space,
                    class_names, mean)[0]


def load_converted(path: str | os.PathLike[str]) -> CaffeNet:
    """The module a :func:`convert_caffe` ``.pt`` holds (CPU, float32, eval mode), with its
    ``pixel_space``, ``input_shape`` and, for generators, ``code_shape``."""
    path = Path(path)
    if not path.is_file():
        raise NeurovisError(f"{path}: no such file; make one with `neurovis convert-caffe`")
    payload = load_weights_file(path, "a converted Caffe net", "make one with `neurovis convert-caffe`")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise NeurovisError(f"{path} is not a converted Caffe net (format {found!r}, expected {FORMAT!r}); "
                            "make one with `neurovis convert-caffe`")
    options = payload.get("options") or {}
    try:
        spec = parse_net_text(payload["prototxt"])
        net = build_net(
            spec, output=options.get("output"), strip_softmax=options.get("strip_softmax", True),
            input_shapes=options.get("input_shapes"), pixel_space=_space_from_dict(payload.get("pixel_space")),
            state_dict=payload["state_dict"],
        )
        if payload.get("class_names"):
            net.class_names = list(payload["class_names"])
        return net
    except (KeyError, TypeError) as err:
        raise NeurovisError(f"{path}: the converted file is incomplete ({err}); convert the Caffe files again") from None
    except NeurovisError as err:
        raise NeurovisError(f"{path}: {err}") from None


# ----------------------------------------------------------------------------- command line
def read_labels(path: Path) -> list[str]:
    """Class names from a labels file, one per line: a leading WordNet id (``n01440764``)
    is dropped and only the first comma-separated name kept (``tench, Tinca tinca`` ->
    ``tench``); other lines are kept whole (stripped)."""
    try:
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise NeurovisError(f"cannot read labels {path} ({err}); give a text file, one class name per line") from None
    names = []
    for line in filter(None, lines):
        head, _, rest = line.partition(" ")
        if rest and len(head) == 9 and head[0] == "n" and head[1:].isdigit():
            line = rest
        names.append(line.split(",")[0].strip())
    if not names:
        raise NeurovisError(f"labels {path} holds no names; give one class name per line")
    return names


def _input_shape(text: str) -> tuple[str | None, tuple[int, ...]]:
    name, _, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N,C,H,W or BLOB=N,C,H,W like data=1,3,227,227, got {text!r}") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"input dims must be positive, got {text!r}")
    return (name or None), shape


def add_convert_caffe_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``convert-caffe`` to an ``argparse`` sub-parser collection."""
    p = subparsers.add_parser(
        "convert-caffe", help="convert a Caffe .prototxt + .caffemodel to a PyTorch .pt (no Caffe needed)",
        description="Read a Caffe net (V0, V1 or V2 files) without Caffe and write a .pt that "
                    "neurovis.caffe.load_converted turns back into an nn.Module whose layers keep their Caffe names.",
    )
    p.add_argument("--prototxt", required=True, help="the deploy .prototxt (layer structure)")
    p.add_argument("--caffemodel", required=True, help="the trained .caffemodel (weights)")
    p.add_argument("--out", required=True, help="the .pt file to write")
    p.add_argument("--output", help="blob the module returns (default: the last layer's, before a final Softmax)")
    p.add_argument("--keep-softmax", action="store_true", help="keep a final Softmax (default: return logits)")
    p.add_argument("--input-shape", type=_input_shape, action="append", metavar="[BLOB=]N,C,H,W",
                   help="shape of an input the prototxt leaves open (repeat for several inputs)")
    p.add_argument("--labels", help="class names, one per line in output order (Caffe's synset_words.txt: "
                                    "'n01440764 tench, Tinca tinca' gives 'tench'), so --class NAME works")
    p.add_argument("--mean-file", help="Caffe mean image (.binaryproto, e.g. the one in the Places tarball): the "
                                       "module's input convention subtracts its per-channel mean instead of ImageNet's")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no summary line")
    p.set_defaults(func=run_convert_caffe)
    return p


def run_convert_caffe(args: argparse.Namespace) -> int:
    """Run ``neurovis convert-caffe``; returns the exit code (0)."""
    shapes: dict[str, tuple[int, ...]] | None = None
    if args.input_shape:
        shapes = {}
        unnamed = [s for n, s in args.input_shape if n is None]
        if unnamed:
            try:
                spec = parse_net_text(_read_text(Path(args.prototxt)))
            except NeurovisError as err:
                raise NeurovisError(f"{args.prototxt}: {err}") from None
            declared = [n for n, _ in spec.inputs] + [t for lay in spec.layers if lay.type == "Input" for t in lay.tops]
            if len(unnamed) > 1 or len(declared) != 1:
                raise NeurovisError("--input-shape without a blob name needs a net with one declared input; use BLOB=N,C,H,W")
            shapes[declared[0]] = unnamed[0]
        shapes.update({n: s for n, s in args.input_shape if n is not None})
    labels = read_labels(Path(args.labels)) if args.labels else None
    mean = read_mean_file(args.mean_file) if getattr(args, "mean_file", None) else None
    path, model = _convert(Path(args.prototxt), Path(args.caffemodel), Path(args.out), args.force,
                           args.output, not args.keep_softmax, shapes, None, labels, mean)
    if not args.quiet:
        n_params = sum(p.numel() for p in model.parameters())
        space = getattr(model, "pixel_space", None)
        print(f"{len(model._plan)} layers, {n_params:,} parameters, input {model.input_names} "
              f"{getattr(model, 'input_shape', '')}, output {model.output_names[0]}"
              f"{', pixels: ' + space.name if space else ''} -> {path}")
    return 0
