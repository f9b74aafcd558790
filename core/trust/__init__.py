"""Trust in a model's output: is an image like the training films, and what do its scores mean.

- features: logits and pooled final features from one forward pass, over a loader or a batch
- ood: out-of-distribution score (Mahalanobis distance of pooled features to the training films)
- temperature: per-label temperature scaling of the logits (calibrated probabilities)
- fit: both fitted at the end of `fit` (training split for the OOD description, validation split
  for its threshold and for the temperatures)
"""
