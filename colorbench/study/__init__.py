"""The colorization Turing test: study definition, stimuli, storage, protocol, statistics.

``config`` (what a study is) -> ``stimuli`` (real and fake images built by the one
pipeline) -> ``session`` (the protocol a participant goes through, validated on the
server) -> ``store`` (SQLite, one committed transaction per judgment) -> ``stats``
(fooled rate per model with bootstrap standard errors) -> ``results/study/fooled.json``.
Importing this package imports nothing heavy.
"""

from __future__ import annotations

__all__ = ["config", "stimuli", "store", "session", "stats", "sync", "cli"]
