"""`autothink export`: an adapter made usable outside the toolkit.

  merged model   the LoRA merged with peft into a full-precision copy of its base (never into 4-bit weights),
                 saved as safetensors with the tokenizer, a chat template and a generation config
  chat template  the base's own template wrapped so that the generation prompt is the ellipsis (auto) prompt
                 unless the caller passes `thinking=True` (standard) or `thinking=False` (no-think), rendering
                 exactly what `prompts.render_prompt` renders
  --gguf         the merged model as GGUF, written by llama.cpp's own convert_hf_to_gguf.py
  --gguf-lora    the adapter alone as a GGUF LoRA (convert_lora_to_gguf.py), for `llama-cli --lora` / Ollama
  --ollama       a Modelfile whose TEMPLATE sends the ellipsis prompt, with the paper's sampling

llama.cpp's converters are not shipped here: they are run from a llama.cpp checkout (--llama-cpp, $LLAMA_CPP_DIR,
or the cache folder), in a subprocess with the interpreter running this code.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from autothink_lite import __version__, miniature
from autothink_lite.adapters import ADAPTER_CONFIG, pull_adapter
from autothink_lite.errors import AutoThinkError
from autothink_lite.hub_client import download
from autothink_lite.modeling import ModelLoadError, load_tokenizer, resolve_model_path
from autothink_lite.prompts import MODE_SUFFIX, THINK_OPEN, PromptError, render_prompt
from autothink_lite.runs import STAGE_DONE

logger = logging.getLogger(__name__)

SAMPLING = {"temperature": 0.6, "top_p": 0.95, "do_sample": True}  # the paper's evaluation sampling
DTYPES = ("auto", "float32", "bfloat16", "float16")
GGUF_TYPES = ("auto", "f32", "f16", "bf16", "q8_0")  # what both llama.cpp converters accept
LLAMA_CPP_ENV = "LLAMA_CPP_DIR"
EXPORT_INFO = "export.json"
MODEL_GGUF, ADAPTER_GGUF, BASE_GGUF, MODELFILE = "model.gguf", "adapter.gguf", "base.gguf", "Modelfile"
# The miniature's BPE vocabulary is its own, so llama.cpp's converter, which recognises a tokenizer by hashing
# the encoding of a test string, cannot name its pre-tokenizer. It splits text with Qwen2's regex: "qwen2".
MINIATURE_MARKER, MINIATURE_PRE_TOKENIZER = "miniature.json", "qwen2"
GET_LLAMA_CPP = ("git clone --depth 1 https://github.com/ggml-org/llama.cpp {cache} (or unpack the llama-cpp-python "
                 "0.3.36 sdist and use its vendor/llama.cpp), or pass --llama-cpp DIR / set LLAMA_CPP_DIR")


class ExportError(AutoThinkError, RuntimeError):
    """An export that cannot go on (bad adapter, output folder in the way, no converter), with the fix."""


# ------------------------------------------------------------------------------------- chat template


def _literal(text: str) -> str:
    """A string literal that Jinja and Go templates both read back as `text`."""
    return json.dumps(text, ensure_ascii=False)


def mode_chat_template(chat_template: str) -> str:
    """The base's chat template, its generation prompt made to end like `render_prompt`'s.

    The base template's output is captured (`{% set %}...{% endset %}`, which llama.cpp's Jinja engine reads too),
    given exactly one `<think>\\n` as `prompts.open_think` does, then the mode's suffix: the ellipsis by default,
    none with `thinking=True`, the closed think block with `thinking=False` (`enable_thinking`, Qwen3's name for
    the switch, is read when `thinking` is not given). Without a generation prompt the base's text is unchanged.
    """
    body = chat_template[:-1] if chat_template.endswith("\n") else chat_template  # Jinja drops one final newline
    opened = THINK_OPEN + "\n"
    return (
        "{% set autothink_text %}" + body + "{% endset %}"
        "{% if thinking is not defined and enable_thinking is defined %}{% set thinking = enable_thinking %}{% endif %}"
        "{% if add_generation_prompt is defined and add_generation_prompt %}"
        f"{{% if autothink_text.endswith({_literal(opened)}) %}}{{{{ autothink_text }}}}"
        f"{{% elif autothink_text.endswith({_literal(THINK_OPEN)}) %}}{{{{ autothink_text + {_literal(chr(10))} }}}}"
        f"{{% else %}}{{{{ autothink_text + {_literal(opened)} }}}}{{% endif %}}"
        f"{{% if thinking is not defined or thinking is none %}}{{{{ {_literal(MODE_SUFFIX['auto'])} }}}}"
        f"{{% elif thinking %}}{{{{ {_literal(MODE_SUFFIX['standard'])} }}}}"
        f"{{% else %}}{{{{ {_literal(MODE_SUFFIX['no_think'])} }}}}{{% endif %}}"
        "{% else %}{{ autothink_text }}{% endif %}"
    )


THINKING_KWARGS = {"auto": {}, "standard": {"thinking": True}, "no_think": {"thinking": False}}


def check_mode_template(tokenizer: Any, original: Any) -> None:
    """Fail unless the wrapped template renders each prompt mode exactly as `render_prompt` renders it with the
    original tokenizer, with and without a system prompt."""
    for system in (None, "You are a helpful assistant."):
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": "What is 2 + 3? Think step by step."}]
        for mode, kwargs in THINKING_KWARGS.items():
            ours = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)
            expected = render_prompt(original, messages[-1]["content"], mode, system_prompt=system, instruction=None)
            if ours != expected:
                raise ExportError(f"the exported chat template renders the {mode} prompt as {ours[-40:]!r}, not "
                                  f"{expected[-40:]!r} like render_prompt: this base's chat template has a shape "
                                  "the wrapper cannot follow; please report it with the base model's name")


# ------------------------------------------------------------------------------------------ Ollama


@dataclass(frozen=True)
class TurnParts:
    """The literal text around each turn of a chat template's rendering, read off with placeholder contents."""

    start: str             # before the system prompt (a BOS the runtime does not add itself)
    user: str              # before each user turn
    assistant: str         # before an earlier assistant turn
    assistant_end: str     # after it
    generation: str        # the generation prompt: ends with the ellipsis prompt
    stops: list[str] = field(default_factory=list)


def turn_parts(tokenizer: Any, *, runtime_adds_bos: bool) -> TurnParts:
    """Split the (exported) template's renderings at placeholders; fail when the pieces do not add back up."""
    s, u1, a1, u2 = "\ue000system\ue000", "\ue000user1\ue000", "\ue000answer1\ue000", "\ue000user2\ue000"

    def render(*messages: tuple[str, str]) -> str:
        return tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in messages], tokenize=False,
                                             add_generation_prompt=True)

    one, with_system = render(("user", u1)), render(("system", s), ("user", u1))
    two = render(("user", u1), ("assistant", a1), ("user", u2))
    unfit = ExportError("this base's chat template puts different text around turns depending on the conversation "
                        "(or drops a turn), which an Ollama TEMPLATE of fixed pieces cannot follow: export without "
                        "--ollama and write the Modelfile's TEMPLATE by hand")
    try:
        start, rest = with_system.split(s)
        user, generation = rest.split(u1)
        head, between = two.split(u1)
        assistant, after = between.split(a1)
    except ValueError:
        raise unfit from None
    assistant_end = after.split(u2)[0].removesuffix(user)
    bos = tokenizer.bos_token or ""
    if runtime_adds_bos and bos and start.startswith(bos):
        start = start[len(bos):]
    parts = TurnParts(start, user, assistant, assistant_end, generation,
                      stops=[t for t in dict.fromkeys([tokenizer.eos_token, user.strip(), assistant.strip()]) if t])
    shown_bos = bos if runtime_adds_bos and bos and with_system.startswith(bos) else ""
    assembled_one = shown_bos + parts.start + parts.user + u1 + parts.generation
    assembled_two = (shown_bos + parts.start + parts.user + u1 + parts.assistant + a1 + parts.assistant_end
                     + parts.user + u2 + parts.generation)
    if (assembled_one, assembled_two) != (one, two) or head != shown_bos + parts.start + parts.user:
        raise unfit
    return parts


def modelfile(parts: TurnParts, source: str, adapter: str | None = None) -> str:
    """An Ollama Modelfile: FROM the merged GGUF (or the base GGUF plus the LoRA as ADAPTER), a Go TEMPLATE that
    ends the prompt with the ellipsis, and the paper's sampling. Earlier assistant turns are sent as Ollama keeps
    them (it does not cut their reasoning out as the Jinja template does)."""
    q = _literal
    template = (
        f'{{{{- {q(parts.start)} }}}}{{{{ if .System }}}}{{{{ .System }}}}{{{{ end }}}}\n'
        '{{- range $i, $_ := .Messages }}\n'
        '{{- $last := eq (len (slice $.Messages $i)) 1 }}\n'
        f'{{{{- if eq .Role "user" }}}}{{{{ {q(parts.user)} }}}}{{{{ .Content }}}}\n'
        f'{{{{- else if eq .Role "assistant" }}}}{{{{ {q(parts.assistant)} }}}}{{{{ .Content }}}}'
        f'{{{{ {q(parts.assistant_end)} }}}}\n'
        '{{- end }}\n'
        f'{{{{- if and $last (ne .Role "assistant") }}}}{{{{ {q(parts.generation)} }}}}{{{{ end }}}}\n'
        '{{- end }}'
    )
    lines = [f"FROM {source}"] + ([f"ADAPTER {adapter}"] if adapter else [])
    lines += ['TEMPLATE """' + template + '"""',
              f"PARAMETER temperature {SAMPLING['temperature']}", f"PARAMETER top_p {SAMPLING['top_p']}"]
    lines += [f"PARAMETER stop {q(stop)}" for stop in parts.stops]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ llama.cpp


def find_llama_cpp(folder: str | Path | None = None) -> Path:
    """The llama.cpp checkout holding convert_hf_to_gguf.py: `folder`, else $LLAMA_CPP_DIR, else the cache's."""
    cache = miniature.cache_dir() / "llama.cpp"
    candidates = [Path(folder).expanduser()] if folder else [
        *([Path(os.environ[LLAMA_CPP_ENV]).expanduser()] if os.environ.get(LLAMA_CPP_ENV) else []), cache]
    for candidate in candidates:
        if (candidate / "convert_hf_to_gguf.py").is_file() and (candidate / "convert_lora_to_gguf.py").is_file():
            break
    else:
        raise ExportError(f"llama.cpp's GGUF converters (convert_hf_to_gguf.py, convert_lora_to_gguf.py) are not in "
                          f"{' or '.join(map(str, candidates))}: {GET_LLAMA_CPP.format(cache=cache)}")
    if importlib.util.find_spec("sentencepiece") is None:
        raise ExportError("llama.cpp's converter needs sentencepiece, which is not installed: "
                          "pip install -e '.[export]'")
    return candidate


# convert_hf_to_gguf.py as its own command runs, with one change: the pre-tokenizer's name is answered instead of
# looked up by hash. Works on checkouts with and without the conversion/ package.
_CONVERTER = """
import importlib, sys
folder, script, pre = sys.argv[1:4]
sys.path[:0] = [folder, folder + "/gguf-py"]
module = importlib.import_module(script)
try:
    from conversion.base import TextModel
except ImportError:
    TextModel = module.TextModel
TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
sys.argv = [script + ".py", *sys.argv[4:]]
module.main()
"""


def run_converter(llama_cpp: Path, script: str, args: list[str], *, pre_tokenizer: str | None = None) -> None:
    command = ([sys.executable, "-c", _CONVERTER, str(llama_cpp), script, pre_tokenizer, *args] if pre_tokenizer
               else [sys.executable, str(llama_cpp / f"{script}.py"), *args])
    logger.info("running llama.cpp's %s.py %s%s", script, " ".join(args),
                f" (pre-tokenizer given as {pre_tokenizer!r})" if pre_tokenizer else "")
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}  # the checkout's own gguf-py matches it
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        logger.debug("%s output:\n%s", script, "\n".join(lines))
        raise ExportError(f"llama.cpp's {script}.py failed: {lines[-1] if lines else done.returncode}. Run with -v "
                          "for its output; a base architecture llama.cpp does not know needs a newer llama.cpp "
                          "checkout")


def pre_tokenizer_of(base_dir: Path) -> str | None:
    """The pre-tokenizer to give the converter: only for the miniature, whose custom vocabulary it cannot hash."""
    return MINIATURE_PRE_TOKENIZER if (base_dir / MINIATURE_MARKER).is_file() else None


# ------------------------------------------------------------------------------------------ export


@dataclass
class Exported:
    out: Path
    files: list[str]


def export(adapter: str, out: str | Path, *, base: str | None = None, dtype: str = "auto", gguf: bool = False,
           gguf_lora: bool = False, ollama: bool = False, gguf_type: str = "auto", llama_cpp: str | Path | None = None,
           overwrite: bool = False) -> Exported:
    """Write the merged model (and the GGUF / GGUF LoRA / Modelfile asked for) into `out`; see the module doc."""
    if dtype not in DTYPES:
        raise ExportError(f"dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    if gguf_type not in GGUF_TYPES:
        raise ExportError(f"GGUF type {gguf_type!r}: use one of {', '.join(GGUF_TYPES)}")
    gguf = gguf or (ollama and not gguf_lora)  # a Modelfile needs a GGUF: the merged one unless the LoRA is asked for
    adapter_dir = Path(pull_adapter(adapter, error=ExportError))
    base_name = base or base_of(adapter_dir)
    try:
        base_path = resolve_model_path(base_name)
    except ModelLoadError as err:
        raise ExportError(f"base model of {adapter}: {err}") from None
    converter = find_llama_cpp(llama_cpp) if gguf or gguf_lora else None
    out = prepare_out(Path(out), overwrite=overwrite, keep=[adapter_dir, Path(base_path)])
    files = merge(adapter_dir, base_path, out, dtype=dtype)
    base_dir = Path(base_path) if Path(base_path).is_dir() or not converter else Path(download(base_path))
    pre = pre_tokenizer_of(base_dir)
    if gguf:
        run_converter(converter, "convert_hf_to_gguf", [str(out), "--outfile", str(out / MODEL_GGUF),
                                                        "--outtype", gguf_type], pre_tokenizer=pre)
        files.append(MODEL_GGUF)
    if gguf_lora:
        run_converter(converter, "convert_lora_to_gguf", [str(adapter_dir), "--base", str(base_dir), "--outfile",
                                                          str(out / ADAPTER_GGUF), "--outtype", gguf_type])
        files.append(ADAPTER_GGUF)
        if ollama and not gguf:  # Ollama puts an ADAPTER on a FROM model: the base, converted alike
            run_converter(converter, "convert_hf_to_gguf", [str(base_dir), "--outfile", str(out / BASE_GGUF),
                                                            "--outtype", gguf_type], pre_tokenizer=pre)
            files.append(BASE_GGUF)
    if ollama:
        tokenizer = load_tokenizer(str(out))
        parts = turn_parts(tokenizer, runtime_adds_bos=adds_bos(out))
        source, lora = (f"./{MODEL_GGUF}", None) if gguf else (f"./{BASE_GGUF}", f"./{ADAPTER_GGUF}")
        (out / MODELFILE).write_text(modelfile(parts, source, lora))
        files.append(MODELFILE)
    info = {"adapter": adapter, "adapter_dir": str(adapter_dir), "base_model": base_name, "files": files,
            "autothink_lite": __version__, "chat_template": "ellipsis prompt by default; thinking=True: standard, "
            "thinking=False: no-think", "llama_cpp": str(converter) if converter else None,
            "pre_tokenizer_override": pre if gguf or gguf_lora else None}
    (out / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n")
    for name in files:
        logger.info("wrote %s (%s)", out / name, _size((out / name).stat().st_size))
    return Exported(out, files + [EXPORT_INFO])


def base_of(adapter_dir: Path) -> str:
    """The base an adapter was trained on: stage.json's base_model (what the recipe named), else peft's record."""
    for name, key in ((STAGE_DONE, "base_model"), (ADAPTER_CONFIG, "base_model_name_or_path")):
        try:
            value = json.loads((adapter_dir / name).read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if value:
            return value
    raise ExportError(f"adapter {adapter_dir} does not say which base model it was trained on: pass --base "
                      "(a Hub id, a local folder or 'mini')")


def prepare_out(out: Path, *, overwrite: bool, keep: list[Path]) -> Path:
    """An empty output folder; a non-empty one is replaced only with `overwrite`, and never one holding the inputs."""
    out = out.expanduser()
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file: pass a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ExportError(f"--out {out} is not empty: pass --overwrite to replace it, or another --out")
        resolved = out.resolve()
        inside = [p for p in keep if p.exists() and (p.resolve() == resolved or resolved in p.resolve().parents)]
        if inside or resolved in (Path.home().resolve(), Path.cwd().resolve(), Path(resolved.anchor)):
            raise ExportError(f"--out {out} holds the adapter or base model, or is your home / working folder: "
                              "--overwrite will not delete it; pass another --out")
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"cannot create --out {out} ({err.strerror or err}): pass another --out") from None
    return out


def merge(adapter_dir: Path, base_path: str, out: Path, *, dtype: str) -> list[str]:
    """Merge the LoRA into a full-precision copy of the base on the CPU and save it with the mode chat template
    and the paper's sampling; returns the files written."""
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(base_path)
    except OSError as err:
        raise ExportError(f"could not load base model {base_path!r} ({str(err).splitlines()[0]}): check the Hub id, "
                          "your network and HF_TOKEN, or pass a local folder with --base") from None
    torch_dtype = getattr(torch, dtype) if dtype != "auto" else (getattr(config, "dtype", None) or torch.float32)
    if isinstance(torch_dtype, str):
        torch_dtype = getattr(torch, torch_dtype)
    with torch.device("meta"):
        parameters = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    size = parameters * torch_dtype.itemsize
    logger.info("merging needs about %s of memory (CPU RAM): %s parameters x %d bytes (%s)", _size(size),
                f"{parameters:,}", torch_dtype.itemsize, str(torch_dtype).removeprefix("torch."))
    original = load_tokenizer(base_path)
    if not getattr(original, "chat_template", None):
        raise ExportError(f"the base {base_path}'s tokenizer has no chat template: use an R1-style chat model")
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch_dtype, device_map="cpu")
    try:
        model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    except (ValueError, KeyError, RuntimeError) as err:
        raise ExportError(f"adapter {adapter_dir} does not fit base {base_path} ({str(err).splitlines()[0]}): "
                          "pass the base it was trained on with --base") from None
    model.generation_config.update(**SAMPLING)
    model.save_pretrained(str(out))
    tokenizer = load_tokenizer(base_path)
    tokenizer.chat_template = mode_chat_template(original.chat_template)
    try:
        check_mode_template(tokenizer, original)
    except PromptError as err:
        raise ExportError(str(err)) from None
    tokenizer.save_pretrained(str(out))
    return sorted(p.name for p in out.iterdir())


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def adds_bos(model_dir: Path) -> bool:
    """Whether runtimes reading this tokenizer's config (llama.cpp's converter copies it) put a BOS before a prompt."""
    try:
        return bool(json.loads((model_dir / "tokenizer_config.json").read_text()).get("add_bos_token"))
    except (OSError, ValueError):
        return False
