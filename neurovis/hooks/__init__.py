"""Layer addressing, scoped forward hooks, unit selectors and layer listing."""

from .addressing import layer_aliases, register_aliases, resolve_layer
from .capture import hooked, run_to
from .listing import LayerInfo, list_layers
from .units import ChannelAt, ChannelMean, FlatIndex, Selector, TokenUnit, UnitSelector, as_selector

__all__ = [
    "ChannelAt", "ChannelMean", "FlatIndex", "LayerInfo", "Selector", "TokenUnit", "UnitSelector",
    "as_selector", "hooked", "layer_aliases", "list_layers", "register_aliases", "resolve_layer",
    "run_to",
]
