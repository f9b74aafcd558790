"""Maps that sit on what they see: a training term that asks each label's map to turn with the film.

Nothing in a classification loss says where a class-specific head's evidence should lie: with the
map's peak pooled into the logit, a detector that fires one cell up and left of every mass scores
as well as one that fires on it, and trained from scratch that is what EfficientNet-B0 learns
(docs/attention-study.md measures the offset). A map that follows the film when the film is
turned half a turn (rot180) cannot keep such an offset: turned, up-left becomes down-right, so
the two maps agree only where the evidence is centred on the finding. This is the equivariance
constraint of SEAM (Wang et al., "Self-supervised Equivariant Attention Mechanism for Weakly
Supervised Semantic Segmentation", CVPR 2020), with the half turn as its transform.

The film turns about its centre (pixel p goes to S - 1 - p), exactly, with no pixel lost. Its cells
do not land on cells (cell j sits on pixel s j, `core.explain.base.upsample`, and S - 1 - s j is
not a multiple of s), so both maps are drawn on the film's pixels as the product draws them and
compared there, every pixel counted: a first version that compared cell for cell about a cell
centre had to leave one row and one column of cells out, and MobileNetV2 learnt to put all its
evidence there, where the term could not see it (pointing 0.06 on the validation phantom).
"""

from __future__ import annotations

import torch

from cxr_attention.core.explain.base import upsample


def turn_film(x: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) -> the films turned half a turn about their centre."""
    return torch.flip(x, dims=(-2, -1))


def equivariance_loss(
    maps: torch.Tensor, maps_of_turned: torch.Tensor, findings: torch.Tensor, size: int
) -> torch.Tensor:
    """How far the turned films' maps are from the films' maps turned back, for the findings the
    films have.

    maps, maps_of_turned: (B, L, h, w) per-label maps in [0, 1] of the films and of `turn_film` of
    them; findings: (B, L) 0/1 targets; size: the films' side S in pixels. Returns the squared
    distance over the film's pixels, in units of one cell's area, averaged over the (film,
    finding) pairs present: a finding whose evidence sits one cell off on both costs about 2 x
    its peak height squared, whatever the map's size, while maps of findings a film does not
    have are left to the classification loss (they are not asked to agree on noise).
    """
    ours = upsample(maps, (size, size))
    theirs = turn_film(upsample(maps_of_turned, (size, size)))
    cell_area = (size / maps.shape[-1]) * (size / maps.shape[-2])
    gap = (theirs - ours).square().sum(dim=(-2, -1)) / cell_area  # (B, L)
    present = findings.to(gap.dtype)
    return (gap * present).sum() / present.sum().clamp_min(1.0)
