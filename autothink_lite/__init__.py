"""autothink-lite: teach R1-style reasoning models *when* to think (AutoThink, Tu et al. 2025) on one GPU.

Module map (data flows top to bottom):
  prompts     prompt modes, chat-template rendering, mode detection, answer extraction   (pure)
  grading     answer equivalence via math-verify, degenerate-output check                 (pure)
  rewards     naive reward, batch balance, length shaping                                  (pure)
  metrics     E-F1                                                                          (pure)
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:  # one source: [project].version in pyproject.toml, through the installed package's metadata
    __version__ = _version("autothink-lite")
except PackageNotFoundError:  # imported from a source tree that was never pip-installed
    __version__ = "0+unknown"
