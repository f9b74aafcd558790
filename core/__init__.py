"""cxr-attention: attention-infused CNNs for multi-label chest-radiograph classification."""

__version__ = "0.1.0"
