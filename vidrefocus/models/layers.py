"""Building blocks the project's networks share."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ResBlock"]


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a ReLU between, added to the input.

    Plain convolutions, not NAFNet blocks: oneDNN runs them faster on a CPU than depthwise
    convolutions and normalisations (see DeblurNet's card for the measurement). The second
    convolution starts small, so a deep stack begins close to the identity.

    Args:
        ch: channels in and out.
    """

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        nn.init.zeros_(self.conv2.bias)
        self.conv2.weight.data.mul_(0.1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))
