"""Lung fields: the truth every frontal chest film carries (../shared/DESIGN.md, "Lung fields").

- `model`, `fit`, `augment`, `pairs`, `card`, `evaluate`: the lung-field segmenter (a small U-Net
  over a timm encoder, segmentation-models-pytorch), how it learns outlined films and what its
  card says (`cxr-attention fit-lungs`);
- `segment`, `plausible`, `files`, `shipped`: the fields of one film, whether they can be lung
  fields at all, masks written for files (`cxr-attention lungs`), the shipped model;
- `truth`, `cache`: the fields of a collection's films, for scoring maps and for training;
- `prior`, `views`: what a model trained with a lung prior sees of a film, wherever it is scored.

Holding maps to the fields is `core.explain.lung_scores` and `core.explain.lung_run`; the lung
term of training is `core.training.lung_term`.
"""
