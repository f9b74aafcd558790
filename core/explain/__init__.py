"""Explanations: where a model looks, and whether that is where the disease is.

- `explain(model, x, labels, method)` (`methods.py`): maps in [0, 1] at input resolution for
  "attention", "gradcam", "integrated_gradients" and "random";
- `overlay.py`: colormaps on the model view, per-image or shared scale, difference maps;
- `localization.py`: pointing game, IoBB accuracy (Wang et al. 2017), energy in box, vs boxes/masks;
- `faithfulness.py`: deletion/insertion curves;
- `localize_run.py`: the body of `cxr-attention localize`; `table.py`: the rows for `compare`.
"""

from cxr_attention.core.explain.base import Explainer, Explanation, RawMaps, resolve_labels
from cxr_attention.core.explain.methods import METHODS, explain

__all__ = ["METHODS", "Explainer", "Explanation", "RawMaps", "explain", "resolve_labels"]
