"""Ab-initio MD of liquid ZnO with PBE (issue 19): the pilot that chooses an affordable DFT setting,
the state point, and a resumable NVT/NVE driver whose frames ship in ``data/zno/aimd/``.

Modules: :mod:`.settings` (candidate settings, the GPAW calculator, timed evaluations),
:mod:`.pilot` (cost and force deviation of each setting), :mod:`.storage` (crash-safe files),
:mod:`.ledger` (one-core hours spent). Command line: ``python -m zno_book.aimd --help``.
"""
