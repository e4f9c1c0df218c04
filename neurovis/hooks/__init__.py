"""Layer addressing, scoped forward hooks, unit selectors and layer listing."""

from neurovis.hooks.addressing import layer_aliases, register_aliases, resolve_layer
from neurovis.hooks.capture import hooked, run_to
from neurovis.hooks.listing import LayerInfo, list_layers
from neurovis.hooks.units import ChannelAt, ChannelMean, FlatIndex, Selector, TokenUnit, UnitSelector, as_selector

__all__ = [
    "ChannelAt", "ChannelMean", "FlatIndex", "LayerInfo", "Selector", "TokenUnit", "UnitSelector",
    "as_selector", "hooked", "layer_aliases", "list_layers", "register_aliases", "resolve_layer",
    "run_to",
]
