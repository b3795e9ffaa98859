"""Population fits on a Dask cluster: the subjects' work split among the workers.

The subjects are split into contiguous chunks of about equal numbers of records, one per
worker. Each chunk's records go to its worker once, where a Dask actor keeps the chunk's
prepared problem between iterations; the driver calls the actors directly (no round trip
through the scheduler per call). Every subject's computation depends only on its own records,
its state and the random numbers the driver drew for it, and everything that sums over
subjects is done by the driver in subject order: the estimates are the same, bit for bit,
whatever the number of workers. :class:`DaskChains` serves SAEM's simulation steps,
:class:`DaskTerms` FOCE-I's conditional modes and objective terms.
"""

from __future__ import annotations

import numpy as np

from insilico.errors import SpecError
from insilico.fit.population import SubjectTerms, merge_parts
from insilico.fit.posterior import SubjectProblem


class ChunkChains:
    """A chunk of subjects' prepared problem, kept by the worker that holds it."""

    def __init__(self, model, table):
        self.problem = SubjectProblem(model, table)

    def step(self, model, eta, step, draws):
        """:func:`insilico.fit.saem.simulation_step` on this chunk under ``model``."""
        from insilico.fit.saem import simulation_step

        return simulation_step(self.problem.with_model(model), eta, step, draws)


def subject_chunks(table, n_chunks: int) -> list[tuple[int, int, object]]:
    """``(first subject, end subject, records)`` of up to ``n_chunks`` contiguous chunks of
    about equal numbers of records; each chunk's ``SUBJECT`` numbering starts at 0."""
    subject = table["SUBJECT"].to_numpy()
    n = int(subject[-1]) + 1
    rows = np.bincount(subject, minlength=n)
    share = np.cumsum(rows) / rows.sum()
    cuts = np.searchsorted(share, np.arange(1, min(n_chunks, n)) / min(n_chunks, n)) + 1
    edges = np.unique(np.concatenate([[0], np.minimum(cuts, n), [n]]))
    out = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        part = table[(subject >= a) & (subject < b)].reset_index(drop=True)
        part["SUBJECT"] = part["SUBJECT"] - a
        out.append((int(a), int(b), part))
    return out


class _ChunkActors:
    """One actor of ``kind`` per worker, each holding a contiguous chunk of the subjects."""

    #: the class each worker keeps (built from the model and the chunk's records)
    kind: type

    def __init__(self, model, table, client):
        workers = list(client.scheduler_info().get("workers", {}))
        if not workers:
            raise SpecError("scheduler", client.scheduler.address, "a cluster with workers")
        self.chunks = subject_chunks(table, len(workers))
        # An actor handle talks through the client that is current when it is unpickled;
        # without this, a client entered earlier in the process (``with Client(...)``, as in
        # a notebook) would be used, and calls to actors on this cluster would never return.
        with client.as_current():
            self.actors = [
                client.submit(self.kind, model, part, actor=True, workers=[w]).result()
                for (_, _, part), w in zip(self.chunks, workers, strict=False)
            ]
        self.n_subjects = self.chunks[-1][1]

    def close(self) -> None:
        """Release the chunks' problems on the cluster."""
        self.actors = []


class DaskChains(_ChunkActors):
    """SAEM simulation steps on a Dask cluster (:func:`insilico.fit.saem.run_saem`).

    Parameters
    ----------
    model : Model
    table : DataFrame
        The dataset's normalized table.
    client : dask.distributed.Client
    """

    kind = ChunkChains

    def step(self, model, eta: np.ndarray, step: np.ndarray, draws: dict):
        """One simulation step of every subject; the chunks' results in subject order."""
        from insilico.fit.saem import ChainStep, slice_draws

        futures = [
            actor.step(model, eta[a:b], step, slice_draws(draws, a, b))
            for (a, b, _), actor in zip(self.chunks, self.actors, strict=True)
        ]
        parts = [f.result() for f in futures]
        return ChainStep(
            eta=np.concatenate([p.eta for p in parts]),
            f=np.concatenate([p.f for p in parts]),
            walk_accepted=sum(p.walk_accepted for p in parts),
            component_accepted=np.sum([p.component_accepted for p in parts], axis=0),
        )


class DaskTerms(_ChunkActors):
    """FOCE-I's per-subject parts (:class:`insilico.fit.population.SubjectTerms`) computed on
    a Dask cluster, one chunk of subjects per worker; pass as ``backend`` to
    :func:`insilico.fit.population.fit_focei`.

    Parameters
    ----------
    model : Model
    table : DataFrame
        The dataset's normalized table.
    client : dask.distributed.Client
    """

    kind = SubjectTerms

    def _map(self, method: str, *args, eta: np.ndarray):
        futures = [
            getattr(actor, method)(*args, eta[a:b])
            for (a, b, _), actor in zip(self.chunks, self.actors, strict=True)
        ]
        return merge_parts([f.result() for f in futures])

    def ofv_terms(self, model, eta):
        """:meth:`SubjectTerms.ofv_terms` of every subject."""
        return self._map("ofv_terms", model, eta=eta)

    def solve(self, model, eta0):
        """:meth:`SubjectTerms.solve` of every subject."""
        return self._map("solve", model, eta=eta0)

    def gradient_parts(self, model0, ups, dns, same, eta):
        """:meth:`SubjectTerms.gradient_parts` of every subject."""
        return self._map("gradient_parts", model0, ups, dns, same, eta=eta)
