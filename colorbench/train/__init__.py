"""Training: seeded data sampling, losses, a resumable loop, evaluation and model cards.

``colorbench train MODEL --data folder:PATH --size 224 --steps 2000 --out weights/NAME.safetensors``
(see :mod:`colorbench.train.cli`). Nothing is imported eagerly.
"""

__all__ = ["data", "losses", "loop", "evaluate", "card", "cli"]
