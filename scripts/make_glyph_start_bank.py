"""Write the glyph world's start bank, ``neurovis/glyphs/weights/glyph_start_bank.pt``.

The bank holds the codes ``E(x)`` (post-ReLU fc6 of the glyph encoder, ``(1024, 512)``
float32) of ``GlyphWorld().sample(1024, seed=4242)``: every glyph generator prior starts
and restarts its chains from one of them under the recommended method. Deterministic:
rerun it after retraining the encoder (``python scripts/train_glyphs.py``).

    python scripts/make_glyph_start_bank.py
"""

from __future__ import annotations

from pathlib import Path


from neurovis.glyphs.nets import WEIGHTS_DIR
from neurovis.priors.generator import save_start_bank
from neurovis.glyphs.checkpoints import GLYPH_START_BANK_FILE
from neurovis.glyphs.priors import START_BANK_IMAGES, START_BANK_SEED, make_glyph_start_bank


def main() -> None:
    codes = make_glyph_start_bank()
    path = Path(WEIGHTS_DIR) / GLYPH_START_BANK_FILE
    save_start_bank(path, codes, images={"world": "GlyphWorld()", "n": START_BANK_IMAGES, "seed": START_BANK_SEED},
                    encoder="glyph_encoder.pt relu6 (post-ReLU fc6)")
    print(f"{path}: {tuple(codes.shape)} codes, {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
