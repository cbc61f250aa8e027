"""The experiment folder's owner: what each file of ``logs/<name>/`` is, read and written in one place.

So far its training states (``checkpoints.py``: the states' files, which are complete, the latest,
the best, whether a run can resume); the other artefacts' names still live in ``rvc/paths.py``.
"""
