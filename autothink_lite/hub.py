"""Share adapters on the Hugging Face Hub: push a trained LoRA adapter folder with its model card, pull one back.

Failures are turned into `HubError` messages that say what to do (log in, check the network, pick a repo
you own). The token never appears in a log line or an error message: any text that could echo it (a server
reply, an exception from the HTTP stack) is masked before it is shown.
"""

from __future__ import annotations

import logging
from pathlib import Path
import httpx
from huggingface_hub import HfApi, constants, get_token, snapshot_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from autothink_lite.card import is_generated_stub, write_model_card

logger = logging.getLogger(__name__)

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
# Resume points and logs that may sit in an adapter folder but do not belong in a published repo.
IGNORE_PATTERNS = ["checkpoint-*", "checkpoint-*/**", "*.pt", "*.pth", "optimizer*", "scheduler*", "rng_state*",
                   "training_args.bin", "runs/**"]
LOGIN_FIX = "run `hf auth login` (or `huggingface-cli login`) or set HF_TOKEN to a token with write access"


class HubError(RuntimeError):
    """A push or pull that cannot go on, with the fix."""


def push_adapter(adapter_dir: str | Path, repo_id: str, *, private: bool = False, token: str | None = None,
                 api: HfApi | None = None) -> str:
    """Create `repo_id` if needed and upload the adapter folder (weights, config, tokenizer, card, plots).

    Writes the model card first when the folder has none (or only peft's / trl's generated stub).
    Returns the repository's URL.
    """
    adapter = Path(adapter_dir)
    check_adapter_folder(adapter)
    check_repo_id(repo_id)
    if constants.is_offline_mode():
        raise HubError("offline mode is on (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE): unset it to push to the Hub")
    token = token or get_token()
    if not token:
        raise HubError(f"no Hugging Face token found: {LOGIN_FIX}")
    readme = adapter / "README.md"
    if not readme.is_file() or is_generated_stub(readme):
        write_model_card(adapter, repo_id=repo_id)
    api = api or HfApi()
    logger.info("pushing %s to %s%s", adapter, repo_id, " (private)" if private else "")
    try:
        url = api.create_repo(repo_id, token=token, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=repo_id, folder_path=str(adapter), token=token, repo_type="model",
                          commit_message="Upload AutoThink LoRA adapter", ignore_patterns=list(IGNORE_PATTERNS))
    except Exception as err:  # every failure of the Hub client: translated, with the token masked
        raise hub_error(err, repo_id, token, action="push to") from None
    logger.info("adapter pushed to %s", url)
    return str(url)


def pull_adapter(repo_id_or_path: str | Path, *, revision: str | None = None, token: str | None = None,
                 endpoint: str | None = None, cache_dir: str | Path | None = None) -> str:
    """A local folder holding the adapter: the path itself when it exists, else a Hub snapshot download."""
    local = Path(repo_id_or_path).expanduser()
    if local.exists():
        check_adapter_folder(local)
        return str(local)
    repo_id = str(repo_id_or_path)
    check_repo_id(repo_id, hint=f"no local folder {repo_id} either")
    try:
        path = snapshot_download(repo_id, revision=revision, token=token, endpoint=endpoint,
                                 cache_dir=str(cache_dir) if cache_dir else None)
    except Exception as err:
        raise hub_error(err, repo_id, token or get_token(), action="download") from None
    check_adapter_folder(Path(path))
    return path


def check_adapter_folder(adapter: Path) -> None:
    """A LoRA adapter folder as peft saves it: adapter_config.json plus the weights."""
    if not adapter.is_dir():
        raise HubError(f"{adapter}: no such folder; pass an adapter folder such as RUN_DIR/stage3/final")
    missing = [] if (adapter / "adapter_config.json").is_file() else ["adapter_config.json"]
    if not any((adapter / name).is_file() for name in ADAPTER_WEIGHTS):
        missing.append(" or ".join(ADAPTER_WEIGHTS))
    if missing:
        raise HubError(f"{adapter} is not a LoRA adapter folder (missing {', '.join(missing)}); pass the final "
                       "adapter of a stage, e.g. RUN_DIR/stage3/final")


def check_repo_id(repo_id: str, hint: str = "") -> None:
    """'owner/name' with the Hub's allowed characters (a bare name would land in whoever's namespace the
    token belongs to, which is easy to get wrong)."""
    try:
        validate_repo_id(repo_id)
        if repo_id.count("/") != 1:
            raise HFValidationError("expected exactly one '/'")
    except HFValidationError as err:
        raise HubError(f"invalid repo id {repo_id!r} ({err}{'; ' + hint if hint else ''}): write it as "
                       "'your-name/model-name' using letters, digits, '-', '_' and '.'") from None


def hub_error(err: Exception, repo_id: str, token: str | None, action: str) -> HubError:
    """A HubError that says what went wrong and what to do about it; the token is masked in all of it."""
    status = _status(err)
    detail = _mask(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__, token)
    if isinstance(err, OfflineModeIsEnabled) or constants.is_offline_mode():
        message = (f"offline mode is on (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE) and {repo_id} is not in the local "
                   "cache: unset it to reach the Hub, or pass a local folder")
    elif isinstance(err, (httpx.TransportError, ConnectionError, TimeoutError, LocalEntryNotFoundError)) or (
            _is_requests_connection_error(err)):
        message = (f"cannot reach the Hub to {action} {repo_id} ({detail}): check the network connection or "
                   "proxy (HTTPS_PROXY), then try again")
    elif status == 401:
        message = f"the Hub rejected the token ({detail}): {LOGIN_FIX}"
    elif status == 403:
        message = (f"permission denied to {action} {repo_id} ({detail}): the repo or its namespace belongs to "
                   "someone else, or the token is read-only. Use a repo id in your own namespace "
                   "('your-name/...') or an organisation you can write to, with a token that has write permission")
    elif isinstance(err, RepositoryNotFoundError) or status == 404:
        message = (f"repository {repo_id} not found ({detail}): check the spelling; a private repo also needs "
                   f"a token: {LOGIN_FIX}")
    elif isinstance(err, (HFValidationError, ValueError)) and status is None:
        message = f"the Hub refused {repo_id} ({detail}): write the repo id as 'your-name/model-name'"
    else:
        message = f"could not {action} {repo_id}: {detail}"
    return HubError(_mask(message, token))


def _status(err: Exception) -> int | None:
    response = getattr(err, "response", None) if isinstance(err, HfHubHTTPError) else None
    return getattr(response, "status_code", None)


def _is_requests_connection_error(err: Exception) -> bool:
    """requests' ConnectionError (older hub clients, proxies) without importing requests for it."""
    return type(err).__module__.startswith("requests") and "Connection" in type(err).__name__


def _mask(text: str, token: str | None) -> str:
    return text.replace(token, "hf_***") if token else text
