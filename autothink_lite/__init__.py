"""autothink-lite: teach R1-style reasoning models *when* to think (AutoThink, Tu et al. 2025) on one GPU.

Module map. Imports run one way, down this list's layers (tests/test_architecture.py keeps it so):
  errors      AutoThinkError, the base of every bad-input error                              (pure)
  prompts     prompt modes, chat-template rendering, mode detection, answer extraction       (pure)
  grading     answer equivalence via math-verify, degenerate-output check                    (pure)
  rewards     naive reward, batch balance, length shaping                                    (pure)
  metrics     E-F1                                                                           (pure)
  fitcheck    will a stage fit on the GPU: memory arithmetic                                 (pure)
  grpo_fields trl GRPOConfig's field names, read from trl's source without importing it      (pure)
  runs        RunFolder: the layout of a run folder; stage names; the writability check      (pure)
  config      recipe dataclasses, validated once; EvalSettings, shared with `autothink eval` (pure)
  results     per-sample rows and their files, ResultKey, summaries, E-F1, tables            (pure)
  hub_client  Hub id or local path, Hub download / upload with errors that say what to do    (no torch)
  adapters    LoRA adapter files, the adapter folder check, local-or-Hub resolve             (no torch)
  steering    think-eagerness: a logit bias on </think> at the decision point (no training)
  vllm_steering  the same bias as a vLLM per-request logits processor (imported only where vLLM is)
  unsloth_first  unsloth imported before transformers / trl / peft where it will be used, or refused
  generation  the one generation function (transformers, or a vLLM engine)
  miniature/  the miniature R1: task, tokenizer, build (tiny Qwen2 distilled on arithmetic)
  problems    problem records from the miniature task, Hub datasets, local files; benchmarks; trl rows
  modeling    base model (4-bit or full precision), LoRA attach / continue / save
  trl_compat  trl on a CPU: a plain-torch log-prob kernel for Triton's, the colocated vLLM weight sync by reload
  trainer     trl GRPOTrainer subclass: reward function, batch-level shaping, metrics files, console
  training    the three stages: chaining, resume, the run folder
  evaluation  benchmark x prompt mode -> results files, resumable, with provenance
  pipeline    the main job: train, evaluate base and stages, summarise
  report      tables and plots of one or more runs
  sweep       the think bias over a range of values: table and accuracy/tokens frontier
  card        the model card of an adapter
  hub         push an adapter with its card to the Hub
  export      adapter merged into its base, mode chat template, GGUF via llama.cpp, Ollama Modelfile
  vllm_reasoning  vLLM reasoning parser for the three prompt modes (imported only by vLLM's server)
  serve       `autothink serve`: vLLM's OpenAI server with the mode template, parser and think bias
  reproduce   the miniature comparison behind experiments/reproduce_mini.py
  app_ui      the Gradio app;  cli   the `autothink` command
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:  # one source: [project].version in pyproject.toml, through the installed package's metadata
    __version__ = _version("autothink-lite")
except PackageNotFoundError:  # imported from a source tree that was never pip-installed
    __version__ = "0+unknown"
