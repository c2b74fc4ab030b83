"""Bias initialisation: the rules that are not "zero".

Biases do not need randomness to break symmetry (the random weights already do), so the default is 0, which
:func:`dldna.init.apply` uses. Three situations call for another start:

- :func:`log_prior_bias_`: the output layer of a classifier on imbalanced classes. With bias ``b_k = log p_k`` the
  softmax of an untrained network (whose logits are otherwise near 0) predicts the class frequencies ``p``, so the
  first loss is their entropy instead of ``ln C``, and the first steps are not spent learning the priors.
- :func:`relu_bias_`: a small positive bias before a ReLU, so that more units are active on the first batches.
- :func:`lstm_forget_bias_`: the forget gate of an LSTM (Gers et al., 2000; Jozefowicz et al., 2015). Its gate is
  ``sigmoid(pre-activation + bias)``; a bias of 1 starts it at 0.73 instead of 0.5, so the cell state, and the
  gradient through it, decays by 0.73 per step instead of 0.5.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from dldna.init.schemes import layers_and_activations


def log_prior_bias_(bias: Tensor, class_counts: Sequence[float] | Tensor) -> Tensor:
    """Fill ``bias`` (one entry per class) in place with ``log(count_k / total)``, so that ``softmax(bias)`` is the
    class frequencies, and return it."""
    counts = torch.as_tensor(class_counts, dtype=torch.float64).flatten()
    if counts.numel() != bias.numel():
        raise ValueError(f"class_counts has {counts.numel()} entries but the bias has {bias.numel()}: give one count per class")
    if not bool((counts > 0).all()) or not bool(torch.isfinite(counts).all()):
        raise ValueError("class_counts must be finite and positive: a class that never occurs has no log prior")
    with torch.no_grad():
        bias.copy_((counts / counts.sum()).log().reshape(bias.shape).to(bias.dtype))
    return bias


def relu_bias_(model: nn.Module, value: float) -> nn.Module:
    """Set the bias of every Linear/Conv layer that a ReLU follows to ``value`` (in place); return the model."""
    if not value >= 0:
        raise ValueError(f"value must be a non-negative number, got {value}")
    found = False
    for _, layer, activation in layers_and_activations(model):
        if isinstance(activation, nn.ReLU) and layer.bias is not None:
            with torch.no_grad():
                layer.bias.fill_(value)
            found = True
    if not found:
        raise ValueError("the model has no layer with a bias followed by nn.ReLU")
    return model


def lstm_forget_bias_(lstm: nn.LSTM, value: float = 1.0) -> nn.LSTM:
    """Give every layer (and direction) of ``lstm`` the forget-gate bias ``value`` (in place) and return it.

    torch adds two bias vectors, ``bias_ih`` and ``bias_hh``, each holding the gates in the order input, forget,
    cell, output; the forget block of ``bias_ih`` becomes ``value`` and that of ``bias_hh`` 0, so their sum is
    ``value``. The other gates' biases are left as they are.
    """
    if not isinstance(lstm, nn.LSTM):
        raise TypeError(f"lstm must be a torch.nn.LSTM, got {type(lstm).__name__}")
    if not lstm.bias:
        raise ValueError("the LSTM was built with bias=False: build it with bias=True to give the forget gate a bias")
    hidden = lstm.hidden_size
    with torch.no_grad():
        for name, parameter in lstm.named_parameters():
            if name.startswith("bias_ih"):
                parameter[hidden : 2 * hidden].fill_(value)
            elif name.startswith("bias_hh"):
                parameter[hidden : 2 * hidden].zero_()
    return lstm
