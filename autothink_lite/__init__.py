"""autothink-lite: teach R1-style reasoning models *when* to think (AutoThink, Tu et al. 2025) on one GPU.

Module map (data flows top to bottom):
  prompts     prompt modes, chat-template rendering, mode detection, answer extraction   (pure)
  grading     answer equivalence via math-verify, degenerate-output check                 (pure)
  rewards     naive reward, batch balance, length shaping                                  (pure)
  metrics     E-F1                                                                          (pure)
"""

__version__ = "0.1.0"
