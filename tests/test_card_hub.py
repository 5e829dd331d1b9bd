"""Model cards and Hub push / pull, tested at the HTTP boundary against a stand-in Hub on 127.0.0.1.

The stand-in answers the calls `HfApi.create_repo` and `HfApi.upload_folder` make (huggingface_hub 1.33:
POST /api/repos/create, /api/validate-yaml, /api/models/<repo>/preupload/<rev>, /api/models/<repo>/commit/<rev>)
and records them, so the tests see what would be uploaded. Nothing here may reach huggingface.co: an
autouse fixture points the client's default endpoint at a closed local port.
"""

from __future__ import annotations

import ast
import base64
import json
import logging
import re
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from huggingface_hub import HfApi, constants

from autothink_lite.adapters import pull_adapter
from autothink_lite.card import CITATION, write_model_card
from autothink_lite.hub import push_adapter
from autothink_lite.hub_client import HubError
from fake_runs import write_run_dir, write_safetensors

TOKEN = "hf_testTokenThatMustNeverBeLogged0123"
REPO = "alice/r1-autothink"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def no_real_hub(monkeypatch, tmp_path):
    """Any call that forgot its endpoint fails on a closed local port instead of reaching huggingface.co."""
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-stored-tokens"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)


class StandInHub:
    """A minimal Hub: creates repos, accepts commits of regular (base64) files, can refuse with a 403."""

    def __init__(self, forbidden: bool = False):
        self.forbidden = forbidden
        self.requests: list[tuple[str, str, dict]] = []  # method, path, headers
        self.created: list[dict] = []
        self.commits: list[dict] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_GET(self):
                hub.requests.append(("GET", self.path, dict(self.headers)))
                if hub.forbidden:
                    return self._reply(403, {"error": "You don't have the rights to access this repo"})
                self._reply(404, {"error": "Repository not found"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hub.requests.append(("POST", self.path, dict(self.headers)))
                path = self.path.split("?")[0]
                if hub.forbidden:
                    return self._reply(403, {"error": 'You don\'t have the rights to create a model under the namespace "alice"'})
                if path == "/api/repos/create":
                    payload = json.loads(body)
                    hub.created.append(payload)
                    return self._reply(200, {"url": f"{hub.url}/{payload['organization']}/{payload['name']}"})
                if path == "/api/validate-yaml":
                    return self._reply(200, {"errors": [], "warnings": []})
                if re.fullmatch(r"/api/models/[^/]+/[^/]+/preupload/[^/]+", path):
                    files = json.loads(body)["files"]
                    return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                        "shouldIgnore": False, "oid": None} for f in files]})
                if re.fullmatch(r"/api/models/[^/]+/[^/]+/commit/[^/]+", path):
                    lines = [json.loads(line) for line in body.decode().splitlines() if line]
                    files = {item["value"]["path"]: base64.b64decode(item["value"]["content"])
                             for item in lines if item["key"] == "file"}
                    hub.commits.append({"path": path, "header": lines[0]["value"], "files": files})
                    return self._reply(200, {"commitUrl": f"{hub.url}/{REPO}/commit/{'a' * 40}",
                                             "commitOid": "a" * 40, "pullRequestUrl": None})
                self._reply(404, {"error": f"stand-in Hub does not know {path}"})

            def _reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll interval: shutdown() waits for it, and the tests start many servers.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def api(self) -> HfApi:
        return HfApi(endpoint=self.url)


@pytest.fixture()
def run_dir(tmp_path):
    return write_run_dir(tmp_path / "runs" / "r1-1.5b")


@pytest.fixture()
def adapter(run_dir):
    """A stage-3 adapter that already has a (hand-written) card, so pushing it draws no plots."""
    final = run_dir / "stage3" / "final"
    (final / "README.md").write_text("---\nlibrary_name: peft\n---\n# An AutoThink adapter\n")
    return final


@pytest.fixture(scope="module")
def carded_adapter(tmp_path_factory):
    """A stage-3 adapter of a full run with its card written (once: drawing the card's plots takes a moment)."""
    final = write_run_dir(tmp_path_factory.mktemp("card") / "r1-1.5b") / "stage3" / "final"
    write_model_card(final, repo_id=REPO)
    return final


@pytest.fixture(scope="module")
def card(carded_adapter):
    return (carded_adapter / "README.md").read_text()


def _front_matter(text: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "the card starts with YAML front matter"
    return yaml.safe_load(match.group(1))


def _python_snippet(text: str) -> str:
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


# ---------------------------------------------------------------------------------------------- card


def test_card_front_matter_names_the_base_model_peft_the_license_and_the_tags(card):
    meta = _front_matter(card)
    assert meta["base_model"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    assert meta["library_name"] == "peft" and meta["license"] == "apache-2.0"
    assert {"autothink", "grpo", "lora", "reasoning", "adaptive-thinking"} <= set(meta["tags"])
    assert meta["datasets"] == ["agentica-org/DeepScaleR-Preview-Dataset"]


def test_card_lists_the_settings_of_this_stage_and_the_stages_before_it(card):
    text = card
    rows = [line for line in text.splitlines() if re.match(r"\| [123] \| \d+ \|", line)]
    assert [row.split("|")[1].strip() for row in rows] == ["1", "2", "3"]
    assert "| 1 | 40 | 0.5, 2.0 | off |" in text  # stage 1: batch balance on
    assert "| 3 | 30 | off | 0.05, 0.05 |" in text  # stage 3: length shaping on
    assert "LoRA: rank 16, alpha 32" in text


def test_card_shows_the_eval_table_of_this_stage_against_the_base_with_think_rate_by_level(card):
    text = card
    for run in ("base standard", "base no_think", "base auto", "stage3 auto"):
        assert f"| {run} |" in text
    assert "| stage1 auto |" not in text, "only this adapter's stage is shown"
    assert "L5 think % / acc %" in text and "E-F1" in text


def test_card_draws_its_plots_next_to_it(card, carded_adapter):
    for name in ("accuracy_vs_tokens_mini.png", "think_rate_by_level_mini.png"):
        assert f"]({name})" in card and (carded_adapter / name).is_file()


def test_card_copies_the_plots_it_is_given_instead_of_drawing_its_own(adapter, tmp_path):
    plot = tmp_path / "my_plot.png"
    write_safetensors(plot)  # the card copies the file; its content does not matter here
    text = write_model_card(adapter, plots=[plot], overwrite=True).read_text()
    assert "](my_plot.png)" in text and (adapter / "my_plot.png").read_bytes() == plot.read_bytes()
    assert not (adapter / "accuracy_vs_tokens_mini.png").exists()


def test_card_explains_the_three_prompt_suffixes_and_gives_a_runnable_peft_snippet(card):
    text = card
    assert r"`<think>\n...\n`" in text and r"`<think>\n...\n</think>\n\n`" in text and r"`<think>\n`" in text
    snippet = _python_snippet(text)
    tree = ast.parse(snippet)  # valid Python
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert {"PeftModel.from_pretrained", "AutoModelForCausalLM.from_pretrained", "model.generate"} <= calls
    assert f'ADAPTER = "{REPO}"' in snippet and 'BASE = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"' in snippet
    namespace: dict = {}
    exec(re.search(r"^SUFFIX = .*$", snippet, re.M).group(0), namespace)
    assert namespace["SUFFIX"] == {"auto": "...\n", "think": "", "no_think": "...\n</think>\n\n"}


def test_card_is_honest_about_limitations_and_cites_the_paper(card):
    text = card
    limits = text.split("## Limitations")[1].split("## ")[0]
    assert "LoRA" in limits and "4-bit" in limits and "mathematics only" in limits
    assert "do not transfer" in limits
    assert "own licence applies" in text
    assert CITATION in text and "2505.10832" in CITATION and "Learning When to Think" in CITATION


def test_card_of_the_miniature_names_no_hub_base_and_says_its_numbers_mean_nothing_for_real_models(tmp_path):
    run = write_run_dir(tmp_path / "mini", base_model="mini", stages=(1,))
    text = write_model_card(run / "stage1" / "final").read_text()
    assert "base_model" not in _front_matter(text)
    assert "miniature R1" in text and "say nothing about real models" in text
    assert 'BASE = "path/to/base-model"' in text


def test_card_says_how_to_run_the_adapter_in_vllm_llama_cpp_and_ollama(adapter):
    text = write_model_card(adapter, repo_id="alice/autothink-r1", overwrite=True).read_text()
    section = text.split("## Use it elsewhere")[1].split("\n## ")[0]
    for command in ("autothink serve", "--adapter alice/autothink-r1", '"model": "autothink-r1"',
                    "autothink export alice/autothink-r1 --out autothink-gguf --gguf-lora --ollama",
                    "llama-cli -m autothink-gguf/base.gguf --lora autothink-gguf/adapter.gguf --jinja",
                    "ollama create autothink -f autothink-gguf/Modelfile", '"chat_template_kwargs": {"thinking": false}'):
        assert command in section, command
    body = section.split("<<'JSON'\n")[1].split("\nJSON")[0]  # the curl request is valid JSON, \\ escaped
    assert json.loads(body)["messages"][0]["content"].endswith("within \\boxed{}.")


def test_card_without_results_still_describes_the_adapter(adapter, run_dir):
    shutil.rmtree(run_dir / "eval")
    text = write_model_card(adapter, overwrite=True).read_text()
    assert "No evaluation results" in text and "## How to prompt it" in text


# ---------------------------------------------------------------------------------------------- push


def test_push_creates_the_repo_and_uploads_the_adapter_with_its_card(adapter, caplog):
    caplog.set_level(logging.DEBUG)
    (adapter / "README.md").unlink()
    with StandInHub() as hub:
        url = push_adapter(adapter, REPO, private=True, token=TOKEN, api=hub.api())
    assert url == f"{hub.url}/{REPO}"
    assert hub.created == [{"name": "r1-autothink", "organization": "alice", "visibility": "private", "type": "model"}]
    (commit,) = hub.commits
    assert commit["path"] == f"/api/models/{REPO}/commit/main"
    files = commit["files"]
    assert {"README.md", "adapter_config.json", "adapter_model.safetensors", "stage.json"} <= set(files)
    assert files["adapter_model.safetensors"] == (adapter / "adapter_model.safetensors").read_bytes()
    assert f'ADAPTER = "{REPO}"' in files["README.md"].decode(), "the card written on push names the repo"
    assert all(headers.get("authorization") == f"Bearer {TOKEN}" for _, _, headers in hub.requests)
    assert TOKEN not in caplog.text


def test_push_replaces_the_stub_card_peft_writes_but_keeps_a_handwritten_one(adapter, run_dir):
    shutil.rmtree(run_dir / "eval")  # no plots to draw: this test is about which card is kept
    (adapter / "README.md").write_text("---\nlibrary_name: peft\n---\n# Model Card\n[More Information Needed]\n")
    with StandInHub() as hub:
        push_adapter(adapter, REPO, token=TOKEN, api=hub.api())
    assert "## How to prompt it" in hub.commits[0]["files"]["README.md"].decode()
    (adapter / "README.md").write_text("# My own words\n")
    with StandInHub() as hub:
        push_adapter(adapter, REPO, token=TOKEN, api=hub.api())
    assert hub.commits[0]["files"]["README.md"] == b"# My own words\n"


def test_push_without_a_token_says_how_to_log_in_and_sends_nothing(adapter):
    with StandInHub() as hub, pytest.raises(HubError, match="hf auth login.*HF_TOKEN"):
        push_adapter(adapter, REPO, api=hub.api())
    assert hub.requests == []


def test_push_picks_up_the_token_from_hf_token(adapter, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with StandInHub() as hub:
        push_adapter(adapter, REPO, api=hub.api())
    assert hub.requests[0][2]["authorization"] == f"Bearer {TOKEN}"


def test_push_to_a_repo_of_someone_else_says_permission_denied_without_showing_the_token(adapter, caplog):
    caplog.set_level(logging.DEBUG)
    with StandInHub(forbidden=True) as hub, pytest.raises(HubError, match="permission denied") as err:
        push_adapter(adapter, "bob/not-mine", token=TOKEN, api=hub.api())
    assert "your own namespace" in str(err.value) and "write permission" in str(err.value)
    assert TOKEN not in str(err.value) and TOKEN not in caplog.text
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_push_when_the_hub_cannot_be_reached_says_to_check_the_network(adapter):
    api = HfApi(endpoint=f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(HubError, match="cannot reach the Hub.*network") as err:
        push_adapter(adapter, REPO, token=TOKEN, api=api)
    assert TOKEN not in str(err.value)


def test_push_in_offline_mode_says_which_variable_to_unset(adapter, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        push_adapter(adapter, REPO, token=TOKEN)


@pytest.mark.parametrize("repo_id", ["no-namespace", "alice/bad name", "alice/x/y", "alice/--x--"])
def test_push_rejects_an_invalid_repo_id_before_any_request(adapter, repo_id):
    with StandInHub() as hub, pytest.raises(HubError, match="invalid repo id"):
        push_adapter(adapter, repo_id, token=TOKEN, api=hub.api())
    assert hub.requests == []


def test_push_refuses_a_folder_that_is_not_an_adapter(run_dir):
    with pytest.raises(HubError, match="not a LoRA adapter folder.*adapter_model.safetensors"):
        push_adapter(run_dir, REPO, token=TOKEN)


# ---------------------------------------------------------------------------------------------- pull


def test_pull_returns_a_local_adapter_folder_as_is(adapter):
    assert pull_adapter(str(adapter)) == str(adapter)


def test_pull_from_an_unreachable_hub_says_to_check_the_network(tmp_path):
    with pytest.raises(HubError, match="cannot reach the Hub"):
        pull_adapter(REPO, endpoint=f"http://127.0.0.1:{_closed_port()}", cache_dir=tmp_path / "cache")


def test_the_cards_snippet_loads_base_and_adapter_and_generates(tmp_path, r1_tokenizer):
    """The snippet, run as written, on a tiny random Qwen2 base and a fresh LoRA adapter (local files; the
    generation budget cut to a few tokens)."""
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=len(r1_tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    base = Qwen2ForCausalLM(config)
    base.save_pretrained(tmp_path / "base")
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    lora.save_pretrained(tmp_path / "adapter")
    r1_tokenizer.save_pretrained(tmp_path / "adapter")
    (tmp_path / "adapter" / "stage.json").write_text(json.dumps({"stage": 3, "base_model": str(tmp_path / "base")}))
    card = write_model_card(tmp_path / "adapter", repo_id=str(tmp_path / "adapter")).read_text()
    snippet = _python_snippet(card).replace('BASE = "path/to/base-model"', f'BASE = "{tmp_path / "base"}"')
    assert "max_new_tokens=4096" in snippet
    exec(snippet.replace("max_new_tokens=4096", "max_new_tokens=3"), {})
