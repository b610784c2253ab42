"""mtmsa: GAN image inpainting with multi-head temperature masked self-attention."""

from mtmsa.utils.config import register_resolvers

register_resolvers()

__version__ = "0.1.0"
