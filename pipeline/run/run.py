"""One screening run: what every command that screens shares (DESIGN §9).

A :class:`Run` owns the resolved backend, the screening list with its party-result cache, the
stage timings and the output folder. It is opened at the command or API entry
(:meth:`Run.open`), where the backend is resolved once and the output folder made before any
work; leaving the block publishes the folder (:mod:`pipeline.publish`) and then runs what was
asked to follow a publication (a lake's checkpoint commit), or, on failure, discards both. A run
that finds the published results current (:meth:`Run.keep_published`) discards its folder instead.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from kernels.backend import Backend, select_backend
from pipeline.parties import PartyScreen
from pipeline.publish import discard, new_run
from pipeline.publish import publish as publish_run
from pipeline.reference import CSL_PATH
from pipeline.run.cache import PartyResultCache
from pipeline.run.sink import Sink
from pipeline.run.timings import Timings


class Run(Timings):
    """A screening run.

    Parameters
    ----------
    backend : str or Backend
        Resolved here, once (:func:`kernels.backend.select_backend`).
    csl_path : path
        The screening list.
    folder : Path, optional
        The unpublished folder the outputs go to; None: nothing is written.
    progress : callable, optional
        Called with a message per stage.

    Attributes
    ----------
    backend : Backend
    csl_path : Path
    folder : Path or None
    destination : Path or None
        Where the folder is published (None: the caller publishes it, or nothing is written).
    parties : PartyResultCache
        Party results per consignee, kept for the run (handed to Dask workers explicitly).
    timings : dict
        Seconds per stage (:meth:`stage`).
    current : str or None
        Why the destination's results are current (:meth:`keep_published`): nothing is published.
    warnings : list of str
        Previous run folders kept by the publication (they hold files the tool did not write).
    """

    def __init__(self, backend: str | Backend = "numpy", csl_path: str | Path = CSL_PATH,
                 folder: Path | None = None, progress: Callable[[str], None] | None = None):
        super().__init__(progress)
        self.backend = select_backend(backend)
        self.csl_path = Path(csl_path)
        self.folder = folder
        self.destination: Path | None = None
        self.parties = PartyResultCache(self.csl_path)
        self._sink = Sink(folder) if folder is not None else None
        self._after_publish: list[Callable[[], None]] = []
        self._on_failure: list[Callable[[], None]] = []
        self.current: str | None = None
        self.warnings: list[str] = []

    @classmethod
    @contextmanager
    def open(cls, out_dir: str | Path | None = None, *, backend: str | Backend = "numpy",
             csl_path: str | Path = CSL_PATH, keep: Iterable[str | Path] = (), publish: bool = True,
             progress: Callable[[str], None] | None = None) -> Iterator["Run"]:
        """A run whose outputs are published at ``out_dir`` when the block succeeds.

        Parameters
        ----------
        out_dir : path, optional
            The destination; None: nothing is written.
        backend : str or Backend
        csl_path : path
        keep : paths
            Paths the destination may not be or hold (inputs, a lake).
        publish : bool
            False: write straight into ``out_dir`` (a run folder the caller publishes).
        progress : callable, optional

        Raises
        ------
        kernels.backend.BackendUnavailableError
            The backend asked for does not work here (before any folder is made).
        pipeline.publish.PublishError
            ``out_dir`` is refused or not writable (before any work).
        """
        resolved = select_backend(backend)
        keep = [k for k in keep if k is not None]
        publishing = publish and out_dir is not None
        folder = new_run(out_dir, keep) if publishing else (Path(out_dir) if out_dir is not None else None)
        run = cls(resolved, csl_path, folder, progress)
        run.destination = Path(out_dir) if publishing else None
        try:
            yield run
            if publishing and run.current is None:
                run.warnings = publish_run(folder, out_dir, keep)
        except BaseException:
            if publishing:
                discard(folder)  # the previous results stay as they were
            for undo in run._on_failure:
                undo()
            raise
        if publishing and run.current is not None:  # nothing new: the published results stay
            discard(folder)
            for undo in run._on_failure:
                undo()
            return
        for then in run._after_publish:
            then()

    def keep_published(self, why: str) -> None:
        """Publish nothing: the destination holds current results (``why`` says so); the folder is discarded."""
        self.current = why

    def after_publish(self, then: Callable[[], None], undo: Callable[[], None] | None = None) -> None:
        """Call ``then`` once the outputs are published; ``undo`` instead when the run fails."""
        self._after_publish.append(then)
        if undo is not None:
            self._on_failure.append(undo)

    def use_screening_list(self, csl_path: str | Path) -> None:
        """Screen with another list (one refreshed after the run was opened); call before any screening."""
        self.csl_path = Path(csl_path)
        self.parties = PartyResultCache(self.csl_path)

    @property
    def sink(self) -> Sink | None:
        """The writer of this run's outputs (None when the run writes nothing)."""
        return self._sink

    @property
    def screening_list(self) -> PartyScreen:
        """The screening list (parsed once per process)."""
        return PartyScreen.from_path(self.csl_path)
