"""How the book's DFT reference data are made: :mod:`~zno_book.reference.plan` (every calculation as a
named task), :mod:`~zno_book.reference.recipes` (how a structure is built), :mod:`~zno_book.reference.engine`
(GPAW and its settings), :mod:`~zno_book.reference.runner` (resumable execution on any executor, through
:mod:`zno_book.driver`) and :mod:`~zno_book.reference.sampling` (candidate frames); command line:
``python -m zno_book.reference``.
"""
