#!/usr/bin/env bash
# Retrain every shipped glyph-world network from scratch, seeded: the classifier, the
# fine-label encoder and the oracle (scripts/train_glyphs.py), the generator prior and its
# discriminator (scripts/train_glyph_prior.py), the Joint PPGN-h generator (a 1,000-step
# fine-tune of that prior with noise on h, h1, x) and the PPGN-h / PPGN-x DAEs
# (scripts/train_glyph_daes.py). Weights land in neurovis/glyphs/weights/, times and final
# metrics are appended to neurovis/glyphs/weights/TRAINING_LOG.md.
# CPU, 2 cores: about 75 min on an AMD EPYC with AVX2 only (fp32): the prior 40 min
# (8,000 steps at 0.30 s), its Joint fine-tune 5 min, the classifier, encoder and oracle
# about 20 min, the DAEs 8 min (TRAINING_LOG.md). bf16 is used where the CPU has it
# natively (AMX); uses CUDA when available.
# The Joint override below is neurovis.glyphs.treatments.joint_override().
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" scripts/train_glyphs.py --no-progress "$@"
rm -rf runs/glyph-prior runs/glyph-joint
# the prior script exits 1 if the prior misses its gates: keep going to ship the rest
"$PY" scripts/train_glyph_prior.py --out runs/glyph-prior || echo "glyph prior below its gates (see TRAINING_LOG.md)"
"$PY" scripts/train_glyph_prior.py --init-from runs/glyph-prior/checkpoint.pt --out runs/glyph-joint --steps 9000 \
    --override '{"noise": [1.0, 0.22, 0.004], "lr": 0.000125, "lr_schedule": "step", "lr_decay_at": []}' --ship-as glyph_generator_joint.pt || true
"$PY" scripts/train_glyph_daes.py
