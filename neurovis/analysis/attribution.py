"""Attribution heatmaps: which pixels of a facet's medoid drive the unit (or class).

Method: Integrated Gradients (captum ``IntegratedGradients``, 32 steps, Gauss-Legendre)
of the condition's raw activation (the unit's pre-ReLU value at its position, or the
class logit) with respect to the input image in the prior's pixel space, from a black
baseline (RGB 0 in that space) to the medoid. The heatmap is the positive part of the
attributions summed over colour channels, scaled to its maximum. For conditions with no
single activation (combined, callable), the condition's objective is attributed instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from neurovis.pixels import PixelSpace
from neurovis.conditions import ClassCondition, Condition, UnitCondition, _model_input
from neurovis.hooks.capture import _first_tensor, run_to
from neurovis._utils.torch_utils import eval_mode
from neurovis.analysis.features import _base_condition

METHOD = "Integrated Gradients (captum), 32 steps, black baseline"
N_STEPS = 32


def _target_fn(condition: Condition, space: PixelSpace):
    base = _base_condition(condition)
    if isinstance(base, UnitCondition):
        def unit(x: torch.Tensor) -> torch.Tensor:
            out = run_to(base.model, _model_input(base.model, x, space, base.input_space), [base.layer])
            return base.selector.vector(out[base.layer])[:, base.selector.index]
        return unit, f"pre-activation of {base.layer!r} unit {base.selector.index}"
    if isinstance(base, ClassCondition):
        def logit(x: torch.Tensor) -> torch.Tensor:
            return _first_tensor(base.model(_model_input(base.model, x, space, base.input_space)))[:, base.class_index]
        return logit, f"logit of class {base.class_index}"
    return (lambda x: condition.evaluate(x, space).objective), "condition's objective"


def attribute(condition: Condition, image: torch.Tensor, space: PixelSpace) -> tuple[np.ndarray, dict[str, Any]]:
    """Integrated-gradients heatmap of one image.

    Args:
        condition: the condition the chains sampled for.
        image: ``(1, C, H, W)`` in the prior's pixel ``space`` (the medoid as decoded).
        space: the prior's pixel space.

    Returns:
        ``(heat (H, W) float in [0, 1], info)`` where ``info`` has the method, the target,
        the attributed value at the image and at the baseline and the convergence delta.
    """
    from captum.attr import IntegratedGradients

    fn, target = _target_fn(condition, space)
    device = image.device
    x = image.detach().float()
    baseline = space.from_rgb01(torch.zeros((1, 3, *x.shape[-2:]), device=device))
    with eval_mode(condition.modules()), torch.enable_grad():
        ig = IntegratedGradients(fn)
        attr, delta = ig.attribute(x, baselines=baseline, n_steps=N_STEPS, return_convergence_delta=True,
                                   internal_batch_size=N_STEPS)
        with torch.no_grad():
            at_x, at_base = float(fn(x)[0]), float(fn(baseline)[0])
    heat = attr[0].sum(0).clamp_min(0).detach().cpu().numpy()
    top = float(heat.max())
    heat = heat / top if top > 0 else heat
    info = {"method": METHOD, "target": target, "value": at_x, "baseline_value": at_base,
            "convergence_delta": float(delta.abs().max())}
    return heat.astype(np.float32), info
