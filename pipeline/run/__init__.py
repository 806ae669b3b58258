"""One screening run: a source cuts time-ordered pieces, one scan screens them from a carry-in,
one sink writes each output once (DESIGN §9).

- :mod:`pipeline.run.run`: :class:`Run`, owning the resolved backend, the party-result cache,
  the timings and the output folder;
- :mod:`pipeline.run.source`: ledger files, lake pieces, a lake as of a date;
- :mod:`pipeline.run.scan`: in this process or on Dask, from one carry-in mechanism;
- :mod:`pipeline.run.rows`: the screening of one piece's rows;
- :mod:`pipeline.run.sink`: one atomic writer per output;
- :mod:`pipeline.run.screening`: a ledger screened whole within a run (screen, audit, diff).
"""
