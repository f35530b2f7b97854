r"""Graph autoencoders: :class:`InnerProductDecoder`, :class:`GAE`, :class:`VGAE` (Kipf & Welling,
2016) and the adversarially regularized :class:`ARGA`, :class:`ARGVA` (Pan et al., 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import validation as v
from gnn.core.nn.inits import reset

from . import _utils

__all__ = ["InnerProductDecoder", "GAE", "VGAE", "ARGA", "ARGVA"]

#: added inside the logarithms of the losses
EPS = 1e-15
#: upper clamp of the log standard deviation
MAX_LOGSTD = 10


class InnerProductDecoder(torch.nn.Module):
    r"""Edge probabilities from inner products: :math:`\sigma(\mathbf{z}_i^\top \mathbf{z}_j)`.

    Example:
        >>> decoder = InnerProductDecoder()
        >>> decoder(torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([2])
    """

    def forward(self, z: Tensor, edge_index: Tensor, sigmoid: bool = True) -> Tensor:
        """``[E]`` scores of the pairs ``edge_index`` (``[2, E]``) for embeddings ``z`` ``[N, D]``."""
        v.check_tensor("z", z)
        edge_index = _utils.check_edges("edge_index", edge_index, z.size(0))
        value = (z[edge_index[0]] * z[edge_index[1]]).sum(dim=1)
        return torch.sigmoid(value) if sigmoid else value

    def forward_all(self, z: Tensor, sigmoid: bool = True) -> Tensor:
        r"""The dense ``[N, N]`` matrix :math:`\sigma(\mathbf{Z}\mathbf{Z}^\top)`."""
        v.check_tensor("z", z)
        adj = z @ z.t()
        return torch.sigmoid(adj) if sigmoid else adj


class GAE(torch.nn.Module):
    r"""The graph autoencoder: an ``encoder`` to node embeddings and a ``decoder`` of edges.

    :meth:`recon_loss` is the binary cross-entropy of the decoded positive edges and
    of negative pairs (given, or sampled uniformly among the non-edges):

    .. math::
        -\frac{1}{|\mathcal{E}^+|}\sum_{\mathcal{E}^+} \log(p_{ij} + \epsilon)
        -\frac{1}{|\mathcal{E}^-|}\sum_{\mathcal{E}^-} \log(1 - p_{ij} + \epsilon)

    Args:
        encoder: the encoder module.
        decoder: the decoder (default :class:`InnerProductDecoder`).

    Example:
        >>> from gnn.conv import GCNConv
        >>> model = GAE(GCNConv(8, 4))
        >>> z = model.encode(torch.randn(3, 8), torch.tensor([[0, 1], [1, 2]]))
        >>> model.recon_loss(z, torch.tensor([[0, 1], [1, 2]])).dim()
        0
    """

    def __init__(self, encoder: torch.nn.Module, decoder: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = InnerProductDecoder() if decoder is None else decoder
        GAE.reset_parameters(self)

    def reset_parameters(self) -> None:
        """Reset the encoder and the decoder."""
        reset(self.encoder)
        reset(self.decoder)

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """The encoder's output."""
        return self.encoder(*args, **kwargs)

    def encode(self, *args: Any, **kwargs: Any) -> Tensor:
        """Node embeddings ``z`` from the encoder."""
        return self.encoder(*args, **kwargs)

    def decode(self, *args: Any, **kwargs: Any) -> Tensor:
        """Edge scores from the decoder."""
        return self.decoder(*args, **kwargs)

    def recon_loss(self, z: Tensor, pos_edge_index: Tensor, neg_edge_index: Tensor | None = None) -> Tensor:
        """Reconstruction loss of ``pos_edge_index`` against ``neg_edge_index`` (sampled if ``None``)."""
        v.check_tensor("z", z)
        pos_edge_index = _utils.check_edges("pos_edge_index", pos_edge_index, z.size(0))
        pos_loss = -torch.log(self.decoder(z, pos_edge_index, sigmoid=True) + EPS).mean()
        if neg_edge_index is None:
            neg_edge_index = _utils.negative_sampling(pos_edge_index, z.size(0))
        neg_edge_index = _utils.check_edges("neg_edge_index", neg_edge_index, z.size(0))
        neg_loss = -torch.log(1 - self.decoder(z, neg_edge_index, sigmoid=True) + EPS).mean()
        return pos_loss + neg_loss

    def test(self, z: Tensor, pos_edge_index: Tensor, neg_edge_index: Tensor) -> tuple[float, float]:
        """``(ROC AUC, average precision)`` of the decoded scores, positives against negatives.

        Computed in torch (no scikit-learn); the values equal scikit-learn's
        ``roc_auc_score`` and ``average_precision_score``.
        """
        v.check_tensor("z", z)
        pos_edge_index = _utils.check_edges("pos_edge_index", pos_edge_index, z.size(0))
        neg_edge_index = _utils.check_edges("neg_edge_index", neg_edge_index, z.size(0))
        with torch.no_grad():
            pos_pred = self.decoder(z, pos_edge_index, sigmoid=True)
            neg_pred = self.decoder(z, neg_edge_index, sigmoid=True)
        y = torch.cat([pos_pred.new_ones(pos_pred.numel()), neg_pred.new_zeros(neg_pred.numel())])
        pred = torch.cat([pos_pred, neg_pred])
        return _utils.roc_auc(y, pred), _utils.average_precision(y, pred)


class VGAE(GAE):
    r"""The variational graph autoencoder.

    The encoder returns :math:`(\boldsymbol{\mu}, \log\boldsymbol{\sigma})`; :meth:`encode`
    clamps :math:`\log\boldsymbol{\sigma}` at ``MAX_LOGSTD`` (10), keeps both as
    ``__mu__`` / ``__logstd__`` and returns
    :math:`\mathbf{z} = \boldsymbol{\mu} + \boldsymbol{\epsilon} \odot \boldsymbol{\sigma}`
    in training (:math:`\boldsymbol{\mu}` in evaluation). :meth:`kl_loss` is

    .. math::
        -\frac{1}{2N}\sum_i \sum_d \big(1 + 2\log\sigma_{id} - \mu_{id}^2 - \sigma_{id}^2\big).

    Example:
        >>> class Encoder(torch.nn.Module):
        ...     def forward(self, x):
        ...         return x, x.new_zeros(x.shape)
        >>> model = VGAE(Encoder()).eval()
        >>> z = model.encode(torch.ones(2, 3))
        >>> float(model.kl_loss())
        1.5
    """

    def __init__(self, encoder: torch.nn.Module, decoder: torch.nn.Module | None = None) -> None:
        super().__init__(encoder, decoder)

    def reparametrize(self, mu: Tensor, logstd: Tensor) -> Tensor:
        r""":math:`\boldsymbol{\mu} + \boldsymbol{\epsilon}\odot e^{\log\boldsymbol{\sigma}}` in training, else :math:`\boldsymbol{\mu}`."""
        if self.training:
            return mu + torch.randn_like(logstd) * torch.exp(logstd)
        return mu

    def encode(self, *args: Any, **kwargs: Any) -> Tensor:
        """Run the encoder, keep ``(mu, logstd)`` and return the sampled ``z``."""
        out = self.encoder(*args, **kwargs)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"the encoder of a VGAE must return (mu, logstd), got {v.describe(out)}")
        self.__mu__, logstd = out
        self.__logstd__ = logstd.clamp(max=MAX_LOGSTD)
        return self.reparametrize(self.__mu__, self.__logstd__)

    def kl_loss(self, mu: Tensor | None = None, logstd: Tensor | None = None) -> Tensor:
        """KL divergence to the standard normal (of the last :meth:`encode` by default)."""
        if mu is None or logstd is None:
            if not hasattr(self, "__mu__"):
                raise ValueError("kl_loss needs 'mu' and 'logstd', or a call of encode() first")
        mu = self.__mu__ if mu is None else mu
        logstd = self.__logstd__ if logstd is None else logstd.clamp(max=MAX_LOGSTD)
        return -0.5 * torch.mean(torch.sum(1 + 2 * logstd - mu**2 - logstd.exp() ** 2, dim=1))


class ARGA(GAE):
    r"""The adversarially regularized graph autoencoder.

    A ``discriminator`` tells embeddings from samples of :math:`\mathcal{N}(0, I)`:
    :meth:`reg_loss` :math:`= -\mathrm{mean}\log(\sigma(D(\mathbf{z})) + \epsilon)` pulls
    the encoder towards the prior, :meth:`discriminator_loss`
    :math:`= -\mathrm{mean}\log(\sigma(D(\mathbf{z}_{real})) + \epsilon)
    - \mathrm{mean}\log(1 - \sigma(D(\mathbf{z})) + \epsilon)` trains the discriminator
    (``z`` detached, :math:`\mathbf{z}_{real} \sim \mathcal{N}(0, I)`).

    Args:
        encoder: the encoder module.
        discriminator: maps ``[N, D]`` embeddings to ``[N, 1]`` logits.
        decoder: the decoder (default :class:`InnerProductDecoder`).
    """

    def __init__(
        self, encoder: torch.nn.Module, discriminator: torch.nn.Module, decoder: torch.nn.Module | None = None
    ) -> None:
        super().__init__(encoder, decoder)
        self.discriminator = discriminator
        reset(self.discriminator)

    def reset_parameters(self) -> None:
        """Reset the encoder, the decoder and the discriminator."""
        super().reset_parameters()
        reset(self.discriminator)

    def reg_loss(self, z: Tensor) -> Tensor:
        """The encoder's adversarial loss."""
        real = torch.sigmoid(self.discriminator(z))
        return -torch.log(real + EPS).mean()

    def discriminator_loss(self, z: Tensor) -> Tensor:
        """The discriminator's loss (prior samples drawn with ``torch.randn_like(z)``)."""
        real = torch.sigmoid(self.discriminator(torch.randn_like(z)))
        fake = torch.sigmoid(self.discriminator(z.detach()))
        return -torch.log(real + EPS).mean() - torch.log(1 - fake + EPS).mean()


class ARGVA(ARGA):
    r"""The adversarially regularized variational graph autoencoder: :class:`ARGA` whose
    encoding is :class:`VGAE`'s (``self.VGAE`` shares the encoder and decoder)."""

    def __init__(
        self, encoder: torch.nn.Module, discriminator: torch.nn.Module, decoder: torch.nn.Module | None = None
    ) -> None:
        super().__init__(encoder, discriminator, decoder)
        self.VGAE = VGAE(encoder, decoder)

    @property
    def __mu__(self) -> Tensor:
        return self.VGAE.__mu__

    @property
    def __logstd__(self) -> Tensor:
        return self.VGAE.__logstd__

    def reparametrize(self, mu: Tensor, logstd: Tensor) -> Tensor:
        """As :meth:`VGAE.reparametrize`."""
        return self.VGAE.reparametrize(mu, logstd)

    def encode(self, *args: Any, **kwargs: Any) -> Tensor:
        """As :meth:`VGAE.encode`."""
        return self.VGAE.encode(*args, **kwargs)

    def kl_loss(self, mu: Tensor | None = None, logstd: Tensor | None = None) -> Tensor:
        """As :meth:`VGAE.kl_loss`."""
        return self.VGAE.kl_loss(mu, logstd)
