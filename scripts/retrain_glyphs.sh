#!/usr/bin/env bash
# Retrain every shipped glyph-world network from scratch, seeded: the classifier, the
# fine-label encoder and the oracle (scripts/train_glyphs.py), then the generator prior
# and its discriminator (scripts/train_glyph_prior.py). Weights land in neurovis/weights/,
# times and final metrics are appended to neurovis/weights/TRAINING_LOG.md.
# CPU: about an hour on 2 cores; uses CUDA when available.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" scripts/train_glyphs.py --no-progress "$@"
rm -rf runs/glyph-prior
"$PY" scripts/train_glyph_prior.py --out runs/glyph-prior
