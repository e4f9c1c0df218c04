"""Measuring a sampler on a world with known modes: acceptance, facet recall, realism, mixing.

The glyph world (:mod:`neurovis.glyphs`) knows what every image is: an oracle
(``load_oracle("glyphs")``) names the mode (shape × colour) of an image, and each class of
the glyph classifier is a union of 4 modes. That turns "does the sampler find every facet
of a class, with realistic images, quickly?" into numbers. All functions take plain arrays
(NumPy arrays, tensors or sequences) except :func:`evaluate_chains`, which decodes a
:class:`~neurovis.Chains` and bundles everything.

================================  ========================================================
measure                           definition
================================  ========================================================
:func:`acceptance`                share of samples with condition probability ``p ≥ 0.97``
:func:`facet_recall`              share of the class's modes holding ≥ 2% of the accepted
                                  samples (as named by the oracle); 0 if none accepted
:func:`realism`                   share of samples the oracle names with confidence ≥ 0.9
:func:`discriminator_logprob`     mean ``log D(x) = log sigmoid(logit)`` of a GAN
                                  discriminator (Xu et al. 2017, Table 2)
:func:`facet_mode_nmi`            normalised mutual information between a report's facets
                                  and the oracle's modes, on the kept samples
:func:`mixing`                    distinct confidently-named modes per window of 100
                                  consecutive samples of one chain (mean over windows
                                  and chains)
================================  ========================================================

Model evaluations: one *evaluation* is one batched generator + condition forward/backward
pass (a batch of chains counts once, as every chain advances together). The exact samplers
(:func:`neurovis.sampling.exact.sample_exact`) record theirs in ``config["evaluations"]`` (1 + one
per MALA/MAP step, 1 + L per HMC step, + 1 per clip that moved a chain). The MALA-approx
sampler (:func:`neurovis.sample`) does not record it; it makes ``steps + 1`` passes (one per
sample; the last one is forward only), which is the count used here.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import normalized_mutual_info_score
from torch import nn

from neurovis._utils.torch_utils import eval_mode, module_device
from neurovis.chains import Chains
from neurovis.conditions import _model_input
from neurovis.errors import NeurovisError
from neurovis.glyphs import GlyphWorld, stream_seed
from neurovis.hooks.addressing import resolve_layer
from neurovis.hooks.capture import run_to
from neurovis.hooks.units import as_selector
from neurovis.pixels import RGB01, PixelSpace

ArrayLike = np.ndarray | torch.Tensor | Sequence[Any]

DEFAULT_THRESHOLD = 0.97
"""Condition probability a sample needs to be accepted (the paper's filter, Fig. S19)."""
DEFAULT_MIN_SHARE = 0.02
"""A mode is found when it holds at least this share of the accepted samples."""
DEFAULT_REALISM_LEVEL = 0.9
"""Oracle confidence at which an image counts as a real glyph."""
DEFAULT_MIXING_WINDOW = 100
"""Samples per window of :func:`mixing` (≈ steps: sample ``t`` is the state before step ``t``)."""
MIN_KEPT_FOR_NMI = 10
"""Fewer kept samples than this and :func:`evaluate_chains` reports no NMI."""


class ModeOracle(Protocol):
    """Anything that names the mode of images, like :class:`neurovis.glyphs.nets.GlyphOracle`."""

    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 3, H, W)`` RGB in [0, 1] -> ``(modes (N,) int, confidence (N,) in [0, 1])``."""
        ...


def _numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _at_least(values: np.ndarray, level: float) -> np.ndarray:
    """``values ≥ level`` compared in the values' own float type (as torch compares a
    float32 tensor with a Python number), NaN never passing."""
    if np.issubdtype(values.dtype, np.floating):
        return values >= np.asarray(level, dtype=values.dtype)
    return values >= level


# ----------------------------------------------------------------------------- the measures


def acceptance(probs: ArrayLike, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Share of samples whose condition probability is at least ``threshold``.

    Args:
        probs: condition probabilities of any shape, e.g. ``chains.probs`` ``(C, T+1)``;
            NaN (failed chains) counts as not accepted.
        threshold: the acceptance threshold (inclusive).

    Returns:
        a share in [0, 1]; NaN when ``probs`` is empty.
    """
    p = _numpy(probs)
    if p.size == 0:
        return math.nan
    return float(_at_least(p, threshold).mean())


def mode_shares(modes: ArrayLike) -> dict[int, float]:
    """``{mode: share}`` of each mode among ``modes`` ``(N,)`` (shares sum to 1; {} if N = 0)."""
    m = _numpy(modes).reshape(-1).astype(np.int64)
    if m.size == 0:
        return {}
    values, counts = np.unique(m, return_counts=True)
    return {int(v): float(c) / m.size for v, c in zip(values, counts)}


def modes_found(accepted_modes: ArrayLike, class_modes: Collection[int], min_share: float = DEFAULT_MIN_SHARE) -> list[int]:
    """The class's modes holding at least ``min_share`` of the accepted samples, sorted.

    A share equal to ``min_share`` up to float rounding (e.g. 1 sample of 50 at 2%) counts.
    """
    shares = mode_shares(accepted_modes)
    wanted = {int(m) for m in class_modes}
    return sorted(m for m, s in shares.items() if m in wanted and (s >= min_share or math.isclose(s, min_share)))


def facet_recall(accepted_modes: ArrayLike, class_modes: Collection[int], min_share: float = DEFAULT_MIN_SHARE) -> float:
    """Share of the class's modes found among the accepted samples.

    Args:
        accepted_modes: ``(N,)`` oracle modes of the accepted samples.
        class_modes: the modes making up the class (``GlyphWorld().class_modes(c)``).
        min_share: a mode counts when it holds at least this share of the ``N`` samples
            (2% by default, so stray single samples of a long run do not count).

    Returns:
        found / ``len(class_modes)`` in [0, 1]; 0 when nothing was accepted.
    """
    modes = {int(m) for m in class_modes}
    if not modes:
        raise NeurovisError("class_modes is empty; a class needs at least one mode")
    return len(modes_found(accepted_modes, modes, min_share)) / len(modes)


def realism(oracle_conf: ArrayLike, level: float = DEFAULT_REALISM_LEVEL) -> float:
    """Share of images the oracle names with confidence at least ``level``.

    Args:
        oracle_conf: ``(N,)`` oracle confidences in [0, 1] (``oracle.predict(images)[1]``).
        level: confidence at which an image counts as a real glyph (inclusive).

    Returns:
        a share in [0, 1]; NaN when ``oracle_conf`` is empty (no images to judge).
    """
    c = _numpy(oracle_conf).reshape(-1)
    if c.size == 0:
        return math.nan
    return float(_at_least(c, level).mean())


def discriminator_logprob(disc: nn.Module, images: torch.Tensor, batch_size: int = 256) -> float:
    """Mean ``log D(x) = log sigmoid(logit)`` of a discriminator over images (nats).

    The "realism judge" of Xu, Acuña & Duvenaud (2017, Table 2): the average
    log-probability the discriminator gives the images of being real (0 is certainly
    real; more negative is less realistic).

    Args:
        disc: maps images ``(B, C, H, W)`` to one logit per image ``(B,)`` (real if > 0),
            e.g. :func:`neurovis.glyphs.checkpoints.load_glyph_discriminator`. Run in eval mode,
            without gradients, on its own device.
        images: ``(N, C, H, W)`` in the discriminator's pixel convention (RGB [0, 1] for
            the glyph discriminator).
        batch_size: images per forward pass.

    Returns:
        the mean over the ``N`` images; NaN when ``N = 0``.
    """
    if images.shape[0] == 0:
        return math.nan
    device = module_device(disc)
    total = 0.0
    with torch.no_grad(), eval_mode([disc]):
        for chunk in images.split(batch_size):
            logits = disc(chunk.to(device, torch.float32)).reshape(chunk.shape[0], -1)
            if logits.shape[1] != 1:
                raise NeurovisError(f"the discriminator gave {logits.shape[1]} outputs per image; it needs one logit")
            total += float(F.logsigmoid(logits.double()).sum())
    return total / images.shape[0]


def facet_mode_nmi(facet_labels: ArrayLike, oracle_modes: ArrayLike) -> float:
    """Normalised mutual information between report facets and oracle modes (in [0, 1]).

    ``sklearn.metrics.normalized_mutual_info_score`` (arithmetic normalisation): 1 when the
    facets are exactly the modes (whatever their names), 0 when independent of them.

    Args:
        facet_labels: ``(N,)`` facet of each kept sample (``report.labels[kept]``).
        oracle_modes: ``(N,)`` the oracle's mode of the same samples.
    """
    a, b = _numpy(facet_labels).reshape(-1), _numpy(oracle_modes).reshape(-1)
    if a.size != b.size:
        raise NeurovisError(f"facet_labels has {a.size} entries but oracle_modes has {b.size}")
    if a.size == 0:
        raise NeurovisError("no kept samples: the NMI of empty labelings is undefined")
    return float(normalized_mutual_info_score(b, a))


def mixing(chain_modes: ArrayLike, mask: ArrayLike | None = None, window: int | None = DEFAULT_MIXING_WINDOW) -> float:
    """Distinct modes visited per window of consecutive samples, mean over windows and chains.

    Each chain is cut into consecutive windows of ``window`` samples starting at sample 0
    (a trailing part shorter than a window is dropped, unless the chain is shorter than one
    window: then the whole chain is one window). In each window the distinct modes among
    the samples that ``mask`` lets through are counted (a window with none counts 0).

    Args:
        chain_modes: ``(C, T+1)`` int, the oracle's mode of every sample of ``C`` chains.
        mask: ``(C, T+1)`` bool, the samples that count, e.g. ``oracle confidence ≥ 0.9``
            (only confidently named glyphs are "visited"); default all.
        window: samples per window (≈ steps); ``None`` = the whole chain (distinct modes
            per chain).

    Returns:
        the mean count; NaN when there are no chains or no samples.
    """
    modes = _numpy(chain_modes)
    if modes.ndim != 2:
        raise NeurovisError(f"chain_modes must be (chains, samples), got shape {modes.shape}")
    keep = np.ones(modes.shape, dtype=bool) if mask is None else _numpy(mask).astype(bool)
    if keep.shape != modes.shape:
        raise NeurovisError(f"mask has shape {keep.shape} but chain_modes has {modes.shape}")
    n_chains, n = modes.shape
    if n_chains == 0 or n == 0:
        return math.nan
    if window is not None and window < 1:
        raise NeurovisError(f"window must be ≥ 1 sample (or None for whole chains), got {window}")
    w = n if window is None or window > n else int(window)
    blocks = n // w
    counts = [
        np.unique(modes[c, b * w : (b + 1) * w][keep[c, b * w : (b + 1) * w]]).size
        for c in range(n_chains)
        for b in range(blocks)
    ]
    return float(np.mean(counts))


# ----------------------------------------------------------------------------- chains


def model_evaluations(chains: Chains) -> tuple[int, str]:
    """``(evaluations, source)``: batched forward/backward passes the run made (per chain).

    ``config["evaluations"]`` when recorded (exact samplers, ``source = "recorded"``), else
    ``steps + 1`` (the MALA-approx sampler: one pass per sample, ``source = "steps+1"``).
    """
    recorded = chains.config.get("evaluations")
    if recorded is not None:
        return int(recorded), "recorded"
    return chains.n_steps + 1, "steps+1"


def evaluate_samples(
    images: torch.Tensor,
    probs: ArrayLike,
    oracle: ModeOracle,
    class_modes: Collection[int],
    threshold: float = DEFAULT_THRESHOLD,
    discriminator: nn.Module | None = None,
    *,
    failed: ArrayLike | None = None,
    facet_labels: ArrayLike | None = None,
    min_share: float = DEFAULT_MIN_SHARE,
    realism_level: float = DEFAULT_REALISM_LEVEL,
    mixing_window: int | None = DEFAULT_MIXING_WINDOW,
    min_kept_for_nmi: int = MIN_KEPT_FOR_NMI,
) -> dict[str, Any]:
    """All measures from decoded samples of ``C`` chains (see :func:`evaluate_chains`).

    Args:
        images: ``(C, T+1, 3, H, W)`` RGB in [0, 1] (clamped here too).
        probs: ``(C, T+1)`` condition probabilities (NaN = failed).
        oracle: names modes, ``predict(images) -> (modes, confidence)``.
        class_modes: the class's modes.
        threshold: acceptance threshold on ``probs``.
        discriminator: optional, one logit per image, fed the RGB [0, 1] images.
        failed: ``(C,)`` bool, chains stopped by NaN/Inf: their samples are never accepted
            and do not count for mixing.
        facet_labels: ``(C·(T+1),)`` facet of each sample in flat order, −1 where not kept
            (``report.labels``); gives ``nmi`` over the kept samples when they are at
            least ``min_kept_for_nmi`` and form at least two facets.
        min_share, realism_level, mixing_window: see :func:`facet_recall`, :func:`realism`
            and :func:`mixing`.

    Returns:
        a JSON-serialisable dict; see :func:`evaluate_chains` for the keys.
    """
    if images.dim() != 5:
        raise NeurovisError(f"images must be (chains, samples, 3, H, W), got shape {tuple(images.shape)}")
    n_chains, n = images.shape[:2]
    p = _numpy(probs)
    p = p if np.issubdtype(p.dtype, np.floating) else p.astype(np.float64)
    if p.shape != (n_chains, n):
        raise NeurovisError(f"probs has shape {p.shape}; expected ({n_chains}, {n}) like the images")
    dead = np.zeros(n_chains, bool) if failed is None else _numpy(failed).astype(bool).reshape(-1)
    flat_images = images.reshape(n_chains * n, *images.shape[2:]).clamp(0, 1)
    modes_t, conf_t = oracle.predict(flat_images)
    modes = _numpy(modes_t).astype(np.int64).reshape(n_chains, n)
    conf = _numpy(conf_t).reshape(n_chains, n)

    ok = _at_least(p, threshold) & ~dead[:, None]
    confident = _at_least(conf, realism_level)
    # a mode is found by samples the oracle names with confidence: an image that shows no
    # glyph (the oracle's "no glyph" answer) finds nothing
    found = modes_found(modes[ok & confident], class_modes, min_share)
    live = ~dead
    out: dict[str, Any] = {
        "n_samples": int(n_chains * n),
        "n_accepted": int(ok.sum()),
        "acceptance": float(ok.mean()) if ok.size else math.nan,
        "facet_recall": facet_recall(modes[ok & confident], class_modes, min_share),
        "modes_found": found,
        "class_modes": sorted(int(m) for m in class_modes),
        "realism": realism(conf[ok], realism_level),
        "realism_all": realism(conf, realism_level),
        "oracle_conf_accepted": float(conf[ok].mean()) if ok.any() else math.nan,
        "mixing": mixing(modes[live], confident[live], mixing_window) if live.any() else math.nan,
        "mixing_window": None if mixing_window is None else min(int(mixing_window), n),
        "modes_per_chain": mixing(modes[live], confident[live], None) if live.any() else math.nan,
        "disc_logprob": None,
        "disc_logprob_all": None,
        "nmi": None,
        "nmi_note": "no report given",
    }
    if discriminator is not None:
        out["disc_logprob"] = discriminator_logprob(discriminator, flat_images[torch.from_numpy(ok.reshape(-1))])
        out["disc_logprob_all"] = discriminator_logprob(discriminator, flat_images)
    if facet_labels is not None:
        labels = _numpy(facet_labels).reshape(-1)
        if labels.size != n_chains * n:
            raise NeurovisError(f"facet_labels has {labels.size} entries for {n_chains * n} samples")
        kept = labels >= 0
        n_facets = np.unique(labels[kept]).size
        if kept.sum() < min_kept_for_nmi:
            out["nmi_note"] = f"only {int(kept.sum())} kept samples (< {min_kept_for_nmi})"
        elif n_facets < 2:
            out["nmi_note"] = f"{n_facets} facet(s)"
        else:
            out["nmi"] = facet_mode_nmi(labels[kept], modes.reshape(-1)[kept])
            out["nmi_note"] = f"{n_facets} facets over {int(kept.sum())} kept samples"
    return out


def evaluate_chains(
    chains: Chains,
    oracle: ModeOracle,
    class_modes: Collection[int],
    threshold: float = DEFAULT_THRESHOLD,
    discriminator: nn.Module | None = None,
    report: Any | None = None,
    *,
    min_share: float = DEFAULT_MIN_SHARE,
    realism_level: float = DEFAULT_REALISM_LEVEL,
    mixing_window: int | None = DEFAULT_MIXING_WINDOW,
    min_kept_for_nmi: int = MIN_KEPT_FOR_NMI,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Decode the chains, let the oracle name every sample, and measure the run.

    Args:
        chains: a run (:func:`neurovis.sample` or :func:`neurovis.sampling.exact.sample_exact`) with
            its prior attached.
        oracle: names the mode of RGB [0, 1] images (``load_oracle("glyphs")``).
        class_modes: the modes of the class the chains sampled (``world.class_modes(c)``).
        threshold: a sample is accepted when its condition probability is ``≥ threshold``.
        discriminator: optional realism judge (one logit per RGB [0, 1] image).
        report: optional :class:`~neurovis.FacetReport` of these chains (``neurovis.analysis``);
            its ``labels`` give the facet–mode NMI over the samples *it* kept.
        min_share: a class mode is found when it holds this share of the accepted samples.
        realism_level: oracle confidence at which an image counts as real.
        mixing_window: samples per :func:`mixing` window (``None``: whole chains).
        min_kept_for_nmi: fewer kept samples than this and ``nmi`` is ``None``.
        batch_size: decoding batch size.

    Returns:
        a JSON-serialisable dict:

        - ``acceptance``: share of all ``C·(T+1)`` samples with ``p ≥ threshold``;
          ``n_samples``, ``n_accepted``;
        - ``facet_recall``: share of ``class_modes`` found (≥ ``min_share`` of the accepted, confidently named
          samples); ``modes_found``, ``class_modes``;
        - ``realism``: share of *accepted* samples the oracle names with confidence
          ``≥ realism_level`` (NaN when none accepted); ``realism_all``: the same over all
          samples; ``oracle_conf_accepted``: mean oracle confidence of accepted samples;
        - ``disc_logprob`` / ``disc_logprob_all``: mean ``log D(x)`` (nats) over accepted /
          all samples (``None`` without a discriminator; NaN when none accepted);
        - ``nmi``: facet–mode NMI on the report's kept samples, ``None`` (with the reason
          in ``nmi_note``) without a report, with fewer than ``min_kept_for_nmi`` kept
          samples or fewer than 2 facets;
        - ``mixing``: distinct confidently named modes (oracle confidence ≥
          ``realism_level``) per window of ``mixing_window`` samples of one chain, mean over
          windows and live chains; ``mixing_window``: the window used (the chain length when
          shorter); ``modes_per_chain``: the same over whole chains;
        - ``wall_time_s``: the run's sampling wall time (``config["wall_time_s"]``);
        - ``evaluations``, ``evaluations_source``: see :func:`model_evaluations`;
        - ``steps``, ``chains``, ``rule``, and ``mh_acceptance`` (mean MH acceptance over
          chains, exact samplers only, else ``None``).
    """
    images = chains.images(rgb=True, batch_size=batch_size)  # (C, T+1, 3, H, W), as the report shows them
    labels = None if report is None else report.labels
    probs = chains.probs.masked_fill(chains.is_start, float("nan"))  # a start is never a sample
    out = evaluate_samples(
        images, probs, oracle, class_modes, threshold, discriminator,
        failed=chains.failed, facet_labels=labels, min_share=min_share, realism_level=realism_level,
        mixing_window=mixing_window, min_kept_for_nmi=min_kept_for_nmi,
    )
    evaluations, source = model_evaluations(chains)
    mh = [a for a in (chains.config.get("acceptance") or []) if a is not None]
    out.update(
        chains=chains.n_chains,
        steps=chains.n_steps,
        rule=chains.config.get("rule"),
        wall_time_s=chains.config.get("wall_time_s"),
        evaluations=evaluations,
        evaluations_source=source,
        mh_acceptance=float(np.mean(mh)) if mh else None,
    )
    return out


# ----------------------------------------------------------------------------- hidden units


DEFAULT_UNIT_IMAGES = 16_384
"""World images :func:`unit_modes` reads a unit on (16 batches of 1,024)."""
DEFAULT_UNIT_SEED = 20_240_601
"""Seed of that world sample (its batches are ``GlyphWorld.sample(1024, stream_seed(seed, i))``)."""
DEFAULT_UNIT_TOP = 0.01
"""A unit's "strongest real images": its top 1% activating images of the sample."""
DEFAULT_UNIT_MIN_SHARE = 0.05
"""A world mode is one of the unit's modes when it holds at least 5% of those images."""
DEFAULT_KEEP_PERCENTILE = 99.0
"""Hidden-unit keep-rule: activation at or above this percentile of the unit's activation
on natural images (the same "top 1%" boundary as the ground truth)."""
_WORLD_BATCH = 1024


def world_sample(n_images: int = DEFAULT_UNIT_IMAGES, seed: int = DEFAULT_UNIT_SEED, world: Any | None = None,
                 batch_size: int = _WORLD_BATCH):
    """Yield ``(images, modes)`` batches of a seeded world sample of ``n_images`` images.

    Batch ``i`` is ``world.sample(min(batch_size, left), seed=stream_seed(seed, i))``, so the
    sample never sits in memory whole (16,384 images of 64×64 are 0.8 GB in float32) and
    the same ``(n_images, seed, batch_size)`` always gives the same images.
    """
    world = world or GlyphWorld()
    done, i = 0, 0
    while done < n_images:
        n = min(batch_size, n_images - done)
        batch = world.sample(n, seed=stream_seed(seed, i))
        yield batch.images, batch.modes
        done += n
        i += 1


def layer_vector(model: nn.Module, layer: str, images: torch.Tensor, position: tuple[int, ...] | int | str | None = None,
                 space: PixelSpace = RGB01) -> torch.Tensor:
    """The ``(B, N)`` vector a :class:`~neurovis.UnitCondition` on ``layer`` reads from ``images``.

    Exactly what ``UnitCondition(model, layer, unit, position=position)`` takes its
    activation from (the layer's output, pre-ReLU on the glyph classifier; on a spatial
    layer every channel at ``position``, the centre by default, or the channel means for
    ``"mean"``), for every unit of the layer at once. ``images`` are in ``space`` (the
    world's RGB [0, 1] by default) and converted to the model's own convention if it has one.
    """
    resolve_layer(model, layer)
    selector = as_selector(0, position)
    out = run_to(model, _model_input(model, images, space, None), [layer])[layer]
    return selector.vector(out)


def layers_activations(model: nn.Module, layers: Sequence[str], position: tuple[int, ...] | int | str | None = None, *,
                       n_images: int = DEFAULT_UNIT_IMAGES, seed: int = DEFAULT_UNIT_SEED, world: Any | None = None,
                       batch_size: int = _WORLD_BATCH) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`layer_activations` of several layers from one pass over the world sample:
    ``({layer: (n_images, N_layer) float32}, modes (n_images,) int64)``."""
    layers = list(dict.fromkeys(layers))
    for layer in layers:
        resolve_layer(model, layer)
    selector = as_selector(0, position)
    device = module_device(model)
    acts: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    modes = []
    with torch.no_grad(), eval_mode([model]):
        for images, m in world_sample(n_images, seed, world, batch_size):
            out = run_to(model, _model_input(model, images.to(device), RGB01, None), layers)
            for layer in layers:
                acts[layer].append(selector.vector(out[layer]).float().cpu())
            modes.append(m)
    return {k: torch.cat(v).numpy() for k, v in acts.items()}, torch.cat(modes).numpy().astype(np.int64)


def layer_activations(model: nn.Module, layer: str, position: tuple[int, ...] | int | str | None = None, *,
                      n_images: int = DEFAULT_UNIT_IMAGES, seed: int = DEFAULT_UNIT_SEED, world: Any | None = None,
                      batch_size: int = _WORLD_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """``(activations (n_images, N) float32, modes (n_images,) int64)``: every unit of ``layer``
    (read as :func:`layer_vector`) on a seeded world sample (:func:`world_sample`), with
    the world mode of each image. One pass serves every unit of the layer."""
    acts, modes = layers_activations(model, [layer], position, n_images=n_images, seed=seed, world=world,
                                     batch_size=batch_size)
    return acts[layer], modes


def modes_of_top_images(activations: ArrayLike, modes: ArrayLike, top: float = DEFAULT_UNIT_TOP,
                        min_share: float = DEFAULT_UNIT_MIN_SHARE) -> list[int]:
    """The modes holding at least ``min_share`` of the ``top`` share of images that
    activate a unit most (sorted); the rule of :func:`unit_modes`.

    Args:
        activations: ``(N,)`` the unit's activation on ``N`` images.
        modes: ``(N,)`` the images' world modes.
        top: share of the images that count as the unit's strongest (``ceil(top·N)`` images,
            at least 1; ties at the boundary broken by image order, stably).
        min_share: share of those images a mode needs (a share equal to it up to rounding
            counts).

    Returns:
        the modes, sorted; empty when no mode reaches ``min_share`` (a unit whose strongest
        images spread evenly over the world) or ``N = 0``.
    """
    a = _numpy(activations).reshape(-1).astype(np.float64)
    m = _numpy(modes).reshape(-1).astype(np.int64)
    if a.size != m.size:
        raise NeurovisError(f"activations has {a.size} entries but modes has {m.size}")
    if not 0 < top <= 1:
        raise NeurovisError(f"top must be a share in (0, 1], got {top}")
    if a.size == 0:
        return []
    a = np.where(np.isfinite(a), a, -np.inf)
    k = max(1, math.ceil(top * a.size - 1e-9))
    order = np.argsort(-a, kind="stable")[:k]
    shares = mode_shares(m[order])
    return sorted(mode for mode, s in shares.items() if s >= min_share or math.isclose(s, min_share))


def unit_modes(model: nn.Module, layer: str, unit: int, position: tuple[int, ...] | int | str | None = None, *,
               n_images: int = DEFAULT_UNIT_IMAGES, seed: int = DEFAULT_UNIT_SEED, top: float = DEFAULT_UNIT_TOP,
               min_share: float = DEFAULT_UNIT_MIN_SHARE, world: Any | None = None) -> list[int]:
    """The ground-truth modes of hidden unit ``unit`` of ``layer``: the world modes holding at
    least ``min_share`` (5%) of the unit's top ``top`` (1%) activating images among
    ``n_images`` (16,384) seeded world images.

    The activation is read exactly as ``UnitCondition(model, layer, unit, position=position)``
    reads it (:func:`layer_vector`: the layer's output, the centre position of a spatial
    layer by default). Why this rule: the top 1% is "the unit's strongest real images"
    (164 of 16,384, and the same boundary as the keep-rule :func:`unit_keep_threshold`), so
    a mode belongs to the unit when the unit's strongest responses often come from it; a
    5% share (≥ 9 of 164 images, ~3× the 1/64 a mode holds by chance) drops modes that
    appear there only by chance. On the glyph classifier a logit of fc8 gets 1–3 of its
    class's 4 modes (its strongest images favour the class's most typical mode;
    ``tests/test_unit_ground_truth.py``); ``docs/benchmarks-units.md`` gives how many modes
    the units of each layer have.

    Returns:
        the modes, sorted (empty when the strongest images spread over the world evenly).
    """
    acts, modes = layer_activations(model, layer, position, n_images=n_images, seed=seed, world=world)
    if not 0 <= unit < acts.shape[1]:
        raise NeurovisError(f"unit {unit} is out of range: layer {layer!r} has {acts.shape[1]} units")
    return modes_of_top_images(acts[:, unit], modes, top, min_share)


def unit_keep_threshold(activations: ArrayLike, percentile: float = DEFAULT_KEEP_PERCENTILE) -> float:
    """The hidden-unit keep-rule's level: the ``percentile`` (99th) of the unit's activation
    on natural images. A sample is kept when its activation is at least this, i.e. it drives
    the unit as strongly as the unit's strongest 1% of real images do.

    Args:
        activations: the unit's activations on natural images, any shape (NaN ignored),
            e.g. a column of :func:`layer_activations`.
        percentile: in [0, 100]; NumPy's default (linear) interpolation.

    Returns:
        the level (float); NaN when there is no finite activation.
    """
    a = _numpy(activations).reshape(-1).astype(np.float64)
    a = a[np.isfinite(a)]
    if not 0 <= percentile <= 100:
        raise NeurovisError(f"percentile must lie in [0, 100], got {percentile}")
    if a.size == 0:
        return math.nan
    return float(np.percentile(a, percentile))


def unit_kept(activations: ArrayLike, threshold: float, reset_every: int = 0, failed: ArrayLike | None = None) -> np.ndarray:
    """``(C, T+1)`` bool: samples the hidden-unit keep-rule keeps, activation ``≥ threshold``.

    Samples at the chains' start and reset indices (sample 0 and every multiple of
    ``reset_every``) are never kept: they are the starts (codes of real images under real
    starts), not samples the chain reached. Failed chains and NaN activations are never kept.
    """
    a = _numpy(activations).astype(np.float64)
    if a.ndim != 2:
        raise NeurovisError(f"activations must be (chains, samples), got shape {a.shape}")
    ok = np.nan_to_num(a, nan=-np.inf) >= threshold
    ok[:, 0] = False
    if reset_every:
        ok[:, :: int(reset_every)] = False
    if failed is not None:
        ok[_numpy(failed).astype(bool).reshape(-1)] = False
    return ok


def dead_on_natural(activations: ArrayLike) -> bool:
    """Whether a unit is dead on natural images: its activation never exceeds 0 (the report's
    dead-unit rule, :func:`neurovis.analysis.select.dead_unit_reason`, on real images).
    NaN entries are ignored; no finite activation counts as dead."""
    a = _numpy(activations).reshape(-1).astype(np.float64)
    a = a[np.isfinite(a)]
    return bool(a.size == 0 or a.max() <= 0)
