import csv

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from neurovis.cli import main


class Encoder64(nn.Module):
    """A tiny encoder of 64×64 RGB [0,1] images: conv 'pool' (spatial), 'fc6' (code)."""

    input_size = (3, 64, 64)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 5, stride=4, padding=2)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc6 = nn.Linear(64, 32)

    def forward(self, x):
        return self.fc6(self.pool(torch.relu(self.conv(x))).flatten(1))


def encoder():
    torch.manual_seed(0)
    return Encoder64()


def _folder(path, n=5):
    path.mkdir()
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (70, 80, 3), dtype=np.uint8)).save(path / f"{i}.jpg")
    return path


def _rows(out):
    with open(out / "losses.csv") as f:
        return list(csv.DictReader(f))


def test_train_prior_trains_resumes_and_protects_folders(tmp_path, capsys):
    data = _folder(tmp_path / "imgs")
    out = tmp_path / "prior"
    args = ["train-prior", "--encoder", "test_cli_train_prior:encoder", "--code-layer", "fc6", "--feature-layer", "pool",
            "--data", str(data), "--out", str(out), "--batch-size", "2", "--w-gan", "0.1", "--checkpoint-every", "2",
            "--device", "cpu", "--quiet"]
    assert main(args + ["--steps", "2"]) == 0
    assert (out / "generator.pt").exists() and len(_rows(out)) == 2
    state = torch.load(out / "generator.pt", weights_only=True)
    assert state["defc7.weight"].shape == (512, 32)  # code size read off the encoder's fc6
    # the start bank: post-ReLU codes of 1,024 training images, which the recommended method starts from
    from neurovis.priors import load_start_bank

    bank = load_start_bank(out / "start_bank.pt")
    assert bank.shape == (1024, 32) and (bank >= 0).all() and bank.std(0).sum() > 0
    assert main(args + ["--steps", "3"]) == 0  # resumes at step 2
    rows = _rows(out)
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    other = tmp_path / "taken"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    capsys.readouterr()
    taken = [other if a == str(out) else a for a in args]
    assert main([str(a) for a in taken] + ["--steps", "1"]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"


def test_train_prior_bad_inputs(tmp_path, capsys):
    base = ["train-prior", "--encoder", "test_cli_train_prior:encoder", "--out", str(tmp_path / "o"), "--quiet"]
    assert main(base + ["--code-layer", "fc9", "--data", str(_folder(tmp_path / "d"))]) == 2
    assert "unknown layer 'fc9'" in capsys.readouterr().err
    assert main(base + ["--code-layer", "fc6", "--data", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(base + ["--code-layer", "fc6", "--data", str(tmp_path / "d"), "--discriminator-channels", "8,0"]) == 2
    assert "discriminator channels must be one or more positive widths" in capsys.readouterr().err


def test_train_prior_discriminator_channels_shape_d(tmp_path):
    out = tmp_path / "prior"
    args = ["train-prior", "--encoder", "test_cli_train_prior:encoder", "--code-layer", "fc6", "--data",
            str(_folder(tmp_path / "imgs", n=3)), "--out", str(out), "--batch-size", "2", "--steps", "1", "--w-gan", "0.1",
            "--device", "cpu", "--quiet", "--discriminator-channels", "8,12,16"]
    assert main(args) == 0
    state = torch.load(out / "discriminator.pt", weights_only=True)
    assert [state[f"features.{i}.weight"].shape[0] for i in (0, 2, 4)] == [8, 12, 16]


@pytest.mark.filterwarnings("ignore:precision=.bf16.")
def test_train_prior_precision_channels_last_and_lr_decay_reach_the_config(tmp_path):
    import json

    data = _folder(tmp_path / "imgs", n=3)
    out = tmp_path / "prior"
    args = ["train-prior", "--encoder", "test_cli_train_prior:encoder", "--code-layer", "fc6", "--feature-layer", "pool",
            "--data", str(data), "--out", str(out), "--batch-size", "2", "--steps", "2", "--device", "cpu", "--quiet",
            "--precision", "bf16", "--channels-last", "--lr-decay-at", "1"]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["precision"] == "bf16" and config["channels_last"] is True and config["lr_decay_at"] == [1]
    rows = _rows(out)
    assert len(rows) == 2 and all(np.isfinite(float(r["loss_g"])) for r in rows)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["opt_g"]["param_groups"][0]["lr"] == 1e-4  # 2e-4 halved after step 1


def test_train_prior_cosine_schedule(tmp_path, capsys):
    import json

    data = _folder(tmp_path / "imgs", n=3)
    base = ["train-prior", "--encoder", "test_cli_train_prior:encoder", "--code-layer", "fc6", "--data", str(data),
            "--batch-size", "2", "--device", "cpu", "--quiet", "--lr", "1e-3", "--lr-schedule", "cosine", "--w-gan", "0.1",
            "--image-loss", "l1"]
    out = tmp_path / "prior"
    assert main(base + ["--out", str(out), "--steps", "3", "--checkpoint-every", "1"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["lr_schedule"] == "cosine" and config["image_loss"] == "l1"
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    # the last step (2 of 3) trained G and D at 1e-3 · (1 + cos(2π/3)) / 2
    assert state["opt_g"]["param_groups"][0]["lr"] == pytest.approx(0.25e-3, rel=1e-9)
    assert state["opt_d"]["param_groups"][0]["lr"] == pytest.approx(0.25e-3, rel=1e-9)
    assert main(base + ["--out", str(tmp_path / "bad"), "--steps", "2", "--lr-decay-at", "1"]) == 2
    assert "drop the lr decay steps" in capsys.readouterr().err


def test_train_prior_under_torchrun_two_ranks(tmp_path):
    """Two CPU ranks (gloo): G and D wrapped in DistributedDataParallel with the GAN on from
    step 0 (D evaluated on real and fake images, two backward passes per step); rank 0
    writes the loss log and the checkpoint."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(tests), str(tests.parent), os.environ.get("PYTHONPATH", "")]))
    data, out = _folder(tmp_path / "imgs", n=6), tmp_path / "prior"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "neurovis",
           "train-prior", "--encoder", "test_cli_train_prior:encoder", "--code-layer", "fc6", "--feature-layer", "pool",
           "--data", str(data), "--out", str(out), "--batch-size", "2", "--steps", "3", "--w-gan", "0.1",
           "--device", "cpu", "--quiet"]
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _rows(out)
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    assert all(np.isfinite(float(r["loss_d"])) and float(r["gan_g"]) > 0 for r in rows)
    assert int(torch.load(out / "checkpoint.pt", weights_only=True)["step"]) == 3
    assert (out / "generator.pt").exists() and (out / "discriminator.pt").exists()
