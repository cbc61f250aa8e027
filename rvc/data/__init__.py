"""The data side of RVC Studio: recordings -> clips (prepare), and what later stages read from them.

Nothing is imported here: the CLI imports each stage's module only when that command runs.
"""
