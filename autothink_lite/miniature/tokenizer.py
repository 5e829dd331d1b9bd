"""The miniature's tokenizer: a small byte-level BPE with DeepSeek-R1-Distill's special tokens and chat template.

Built offline with `tokenizers` and trained on the task's own prompts and traces, so a rendered prompt or a
trace costs few tokens (GRPO on a CPU generates a lot of them). Like the real R1-Distill-Qwen tokenizer:
- Qwen2's pipeline (NFC, Qwen2's split regex, byte-level BPE): any text encodes and decodes exactly, digits
  are always single tokens, and `AutoTokenizer` (which loads every `qwen2` model's tokenizer as
  `Qwen2Tokenizer`, rebuilding that pipeline from the vocabulary and merges) gets exactly this tokenizer;
- `<｜begin▁of▁sentence｜>`, `<｜end▁of▁sentence｜>`, `<｜User｜>`, `<｜Assistant｜>` and the pad are special
  (dropped by `skip_special_tokens=True`); `<think>` and `</think>` are added tokens that are *not*
  special, so decoded completions keep them;
- the chat template writes BOS itself, so rendered prompts are encoded with `add_special_tokens=False`.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Tokenizer
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from autothink_lite.miniature import task
from autothink_lite.prompts import MODE_SUFFIX, THINK_CLOSE, THINK_OPEN, user_message

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
PAD = "<｜▁pad▁｜>"
SPECIAL_TOKENS = [BOS, EOS, USER, ASSISTANT, PAD]
CHAT_TEMPLATE_PATH = Path(__file__).with_name("r1_chat_template.jinja")

VOCAB_SIZE = 512
CORPUS_PROBLEMS_PER_LEVEL = 200


def training_corpus(seed: int = 0) -> list[str]:
    """Texts the BPE merges are learned from: user turns, mode suffixes, thinking and direct completions.

    The think tags are cut out: they are tokens of their own, and no merge should be spent on them.
    """
    rng = random.Random(seed)
    texts = list(MODE_SUFFIX.values())
    for level in task.LEVELS:
        pool = task.train_split(level)
        for record in rng.sample(pool, min(CORPUS_PROBLEMS_PER_LEVEL, len(pool))):
            texts.append(user_message(record["problem"]))
            texts.append(task.sample_completion(record, "standard", rng))
            texts.append(task.completion(record, "auto", think=False))
            texts.append(task.completion(record, "no_think", think=False))
    return [text.replace(THINK_OPEN, "\n").replace(THINK_CLOSE, "\n") for text in texts]


def build_tokenizer(vocab_size: int = VOCAB_SIZE, seed: int = 0) -> Qwen2Tokenizer:
    """Train the BPE on the task corpus; return it as the `Qwen2Tokenizer` that loading it back gives."""
    backend = Tokenizer(models.BPE())
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    backend.decoder = decoders.ByteLevel()
    # The trainer reserves ids 0-6 for the special tokens and the think tags; they are registered as added
    # tokens only after training (registered before, the trainer hands their ids out a second time).
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS + [THINK_OPEN, THINK_CLOSE],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(training_corpus(seed), trainer)
    backend.add_special_tokens(SPECIAL_TOKENS)
    backend.add_tokens([THINK_OPEN, THINK_CLOSE])
    trained = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=None,
        clean_up_tokenization_spaces=False, model_max_length=1024,
    )
    trained.chat_template = CHAT_TEMPLATE_PATH.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        trained.save_pretrained(tmp)
        tokenizer = Qwen2Tokenizer.from_pretrained(tmp)
    sample = training_corpus(seed)[:50]
    if tokenizer(sample, add_special_tokens=False)["input_ids"] != [e.ids for e in backend.encode_batch(sample, add_special_tokens=False)]:
        raise RuntimeError("the saved miniature tokenizer does not load back as trained: transformers changed?")
    return tokenizer
