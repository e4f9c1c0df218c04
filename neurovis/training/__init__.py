"""Training a generator prior (G + D) for any encoder and code layer: :mod:`.prior`
(the trainer), :mod:`.discriminator`, :mod:`.data` (image sources), :mod:`.command`
(the ``train-prior`` command). The glyph world's own recipes live in
:mod:`neurovis.glyphs.recipes`.
"""
