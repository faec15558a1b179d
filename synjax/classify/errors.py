"""The errors of the classifier's data sets (re-exported by :mod:`synjax.classify.datasets`)."""


class IDXError(ValueError):
    """An IDX file is missing, corrupt, truncated, or inconsistent with its partner file."""


class DataNotFoundError(FileNotFoundError, ValueError):
    """The files of a data set are not on disk and could not be downloaded.

    Also a ``ValueError``, so that the CLI reports it as bad input (exit status 2) with its message.
    """
