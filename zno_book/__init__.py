"""The ZnO book's project, built on the library :mod:`mliplib`: the DFT reference data and how it is
made, the shipped models, cached artefacts, findings and the chapters' protocols.

Modules: :mod:`~zno_book.paths` (the one configurable root, ``ZNO_BOOK_ROOT``),
:mod:`~zno_book.constants`, :mod:`~zno_book.structures` (the ZnO structures), :mod:`~zno_book.datasets`
(loading with checksums), :mod:`~zno_book.reference` (the DFT plan and generator),
:mod:`~zno_book.zoo` (the shipped models), :mod:`~zno_book.artefacts`, :mod:`~zno_book.findings`,
:mod:`~zno_book.liquid` and :mod:`~zno_book.clusters` (protocols), :mod:`~zno_book.literature`,
:mod:`~zno_book.notebook` (the chapters' shared preamble), :mod:`~zno_book.aimd` (ab-initio MD of the liquid).

Importing the package imports nothing else, so that :mod:`zno_book.notebook` can set the thread counts
before numpy loads.
"""
