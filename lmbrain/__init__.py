"""lmbrain: language-model-to-brain encoding studies with controls built in.

The package reads as the data flow: ``data`` → ``features`` → ``encoding`` → ``analysis``
(controls and statistics) → ``study`` → ``report``.
"""

__version__ = "0.1.0"
