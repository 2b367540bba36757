"""Optimization phases as a run records them (prune, cluster, QAT) and the rebuilding of a phase's
wrapped model from the weights each phase ended with, so a run continues inside any phase.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .optimize import PHASE_KINDS, cluster_wrap, prune_wrap, qat_wrap


@dataclass(frozen=True)
class Phase:
    """One optimization phase as a run records it: what wraps the model, with which arguments.

    Attributes:
        kind: one of `PHASE_KINDS`.
        options: the keyword arguments of `prune_wrap`, `cluster_wrap` or `qat_wrap`, e.g.
            ``Phase("cluster", {"clusters": 16, "layers": ["predictions"]})``.
    """

    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in PHASE_KINDS:
            raise InputError(f"optimization phase must be one of {', '.join(PHASE_KINDS)}; received {self.kind!r}")

    def wrap(self, model: Any) -> Any:
        """The model wrapped for this phase (the previous phase's wrappers are stripped first)."""
        function = {"prune": prune_wrap, "cluster": cluster_wrap, "qat": qat_wrap}[self.kind]
        try:
            inspect.signature(function).bind(model, **self.options)
        except TypeError as exc:
            raise InputError(f"the {self.kind} phase's options do not fit {function.__name__}: {exc}") from None
        return function(model, **self.options)


def rebuild(model: Any, phases: Sequence[Phase], weights: Sequence[Sequence[np.ndarray] | None]) -> Any:
    """Rebuild the last phase's wrapped model from the weights each phase ended with.

    Wrapping is deterministic: the same wrapping of the same weights has the same variables in the
    same order, so ``get_weights()`` of one loads into another. But sparsity-preserving clustering
    and the `preserve` QAT schemes take zeros and clusters (and so some shapes) from the weights they
    wrap: each phase is wrapped around the weights the previous one ended with, as the run did.

    Args:
        model: the plain model holding the weights the first phase started from.
        phases: the phases in the order they ran (prune, cluster, qat; each at most once).
        weights: per phase, its wrapped model's ``get_weights()`` at its end or, for the last phase,
            at the checkpoint to continue from (None: leave the last as wrapped).

    Returns:
        The last phase's wrapped model holding its weights.

    Raises:
        InputError: phases out of order, a weight list missing, or weights that do not fit.
    """
    if not phases or len(weights) != len(phases):
        raise InputError(f"rebuilding needs one weight list per phase; received {len(phases)} phases, {len(weights)}")
    order = [PHASE_KINDS.index(p.kind) for p in phases]
    if order != sorted(set(order)):
        received = ", ".join(p.kind for p in phases)
        raise InputError(f"phases run in the order {', '.join(PHASE_KINDS)}, each at most once; received {received}")
    for number, (phase, values) in enumerate(zip(phases, weights), start=1):
        model = phase.wrap(model)
        if values is None:
            if number < len(phases):
                raise InputError(f"phase {number} ({phase.kind}) needs the weights it ended with")
            continue
        try:
            model.set_weights(list(values))
        except ValueError as exc:
            raise InputError(
                f"the weights of phase {number} ({phase.kind}) do not fit its wrapped model ({exc}); it was wrapped "
                "with other options or from other starting weights"
            ) from None
    return model
