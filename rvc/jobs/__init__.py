"""Long stages as child processes: training and the data stages alike.

- ``process``: start a child in its own session, tell whether a pid is still that process,
  stop a whole process tree (SIGTERM, then SIGKILL after a grace period);
- ``reporter``: what a stage reports progress through (a tqdm bar, ``@@rvc`` events, nothing);
- ``launcher``: start, find and stop the stage jobs of an experiment, or of the assets folder (downloads)
  (``python -m rvc <stage>``);
- ``state``: a job's state folded from its events file and its process's liveness.

Importing this package starts and loads nothing.
"""
