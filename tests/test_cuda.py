"""The sampler, its speed-ups and the CLI on a CUDA device (skipped where there is none).

CI has no GPU; ``bench/gpu_checks.sh`` runs these on a lent GPU machine. cuDNN may run
fp32 convolutions in TF32 (PyTorch's default), so CUDA steps are compared with the CPU's
by direction and probability, not bit for bit.
"""

from __future__ import annotations

import pytest
import torch

import neurovis as nv
from neurovis.cli import main
from neurovis.sampling.rng import chain_generator

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _glyphs(device: str):
    prior, model = nv.load_prior("glyphs"), nv.load_model("glyphs").to(device)
    for module in prior.modules():
        module.to(device)
    return prior, nv.ClassCondition(model, 3)


def _first_step(device: str, chains: int = 16, **kwargs) -> tuple[torch.Tensor, torch.Tensor, nv.Chains]:
    """``(step (chains, 512), p at the start (chains,), chains)`` of one textbook step of
    class 3 from the same start codes on ``device``."""
    prior, cond = _glyphs(device)
    h = prior.initial_codes([chain_generator(0, i) for i in range(chains)]).abs() * 2
    run = nv.sample(prior, cond, chains=chains, steps=1, init=h, rule="textbook", eps=(1e-5, 1, 0), progress=False,
                    **kwargs)
    return (run.codes[:, 1] - run.codes[:, 0]).flatten(1), run.probs[:, 0], run


def test_cuda_step_matches_the_cpu_step():
    cpu_step, cpu_p, _ = _first_step("cpu")
    gpu_step, gpu_p, run = _first_step("cuda")
    assert run.codes.device.type == "cpu" and run.config["device"].startswith("cuda")
    cos = torch.nn.functional.cosine_similarity(cpu_step, gpu_step, dim=1)
    assert float(cos.min()) > 0.99, cos
    torch.testing.assert_close(gpu_p, cpu_p, rtol=0, atol=1e-2)


@pytest.mark.parametrize("kwargs, min_cos", [({"precision": "bf16"}, 0.95), ({"channels_last": True}, 0.99),
                                             ({"precision": "bf16", "channels_last": True}, 0.95)])
def test_cuda_speed_ups_keep_the_direction_of_fp32(kwargs, min_cos):
    ref, _, _ = _first_step("cuda")
    fast, _, run = _first_step("cuda", **kwargs)
    cos = torch.nn.functional.cosine_similarity(ref, fast, dim=1)
    assert float(cos.mean()) > min_cos, cos
    assert run.codes.dtype == torch.float32


def test_several_units_in_one_cuda_batch_match_each_unit_alone():
    from neurovis.sampling.batched import sample_units

    prior, cond = _glyphs("cuda")
    # one step: GPU kernels may depend on the batch size (last bits), which the clipped
    # prior's chains amplify over later steps (tests/test_acceleration.py)
    together = sample_units(prior, cond.model, "conv5", [1, 7], chains=3, steps=1)
    alone = nv.sample(prior, nv.UnitCondition(cond.model, "conv5", 7), chains=3, steps=1, progress=False)
    torch.testing.assert_close(together[1].probs, alone.probs, rtol=0, atol=1e-3)
    assert together[1].config["condition"] == alone.config["condition"]


def test_facets_command_writes_a_report_on_cuda(tmp_path):
    out = tmp_path / "report"
    rc = main(["facets", "--model", "glyphs", "--layer", "fc8", "--unit", "3", "--device", "cuda", "--chains", "4",
               "--steps", "30", "--no-attribution", "--out", str(out), "--quiet"])
    assert rc == 0 and (out / "index.html").is_file()
