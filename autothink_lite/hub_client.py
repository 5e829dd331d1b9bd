"""The Hugging Face Hub as the toolkit reaches it: is a name a Hub id or a local path, download, upload.

Failures are turned into `HubError` messages that say what to do (log in, check the network, pick a repo
you own). The token never appears in a log line or an error message: any text that could echo it (a server
reply, an exception from the HTTP stack) is masked before it is shown.
"""

from __future__ import annotations

import logging
import re
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

from autothink_lite.errors import AutoThinkError

logger = logging.getLogger(__name__)

# A Hub repository id: "name" or "owner/name" (letters, digits, '-', '_', '.'); anything else is a local path.
_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")
# Resume points and logs that may sit in an adapter folder but do not belong in a published repo.
IGNORE_PATTERNS = ["checkpoint-*", "checkpoint-*/**", "*.pt", "*.pth", "optimizer*", "scheduler*", "rng_state*",
                   "training_args.bin", "runs/**"]
LOGIN_FIX = "run `hf auth login` (or `huggingface-cli login`) or set HF_TOKEN to a token with write access"


class HubError(AutoThinkError, RuntimeError):
    """A push or pull that cannot go on, with the fix."""


def is_local_path(name: str) -> bool:
    """Whether `name` means a local path rather than a Hub id: it exists, or it is written as a path (starts
    with '.', '/' or '~', holds a backslash, or has characters no Hub id has)."""
    return (Path(name).expanduser().exists() or name.startswith((".", "/", "~")) or "\\" in name
            or not _HUB_ID.fullmatch(name))


def download(repo_id: str, *, revision: str | None = None, token: str | None = None, endpoint: str | None = None,
             cache_dir: str | Path | None = None) -> str:
    """The local folder of a Hub repository's snapshot (downloaded into the Hub cache when not there yet)."""
    check_repo_id(repo_id, hint=f"no local folder {repo_id} either")
    try:
        return snapshot_download(repo_id, revision=revision, token=token, endpoint=endpoint,
                                 cache_dir=str(cache_dir) if cache_dir else None)
    except Exception as err:  # every failure of the Hub client: translated, with the token masked
        raise hub_error(err, repo_id, token or get_token(), action="download") from None


def upload_token(token: str | None = None) -> str:
    """The token a push will use; fails first when offline mode is on or no token is found."""
    if constants.is_offline_mode():
        raise HubError("offline mode is on (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE): unset it to push to the Hub")
    token = token or get_token()
    if not token:
        raise HubError(f"no Hugging Face token found: {LOGIN_FIX}")
    return token


def upload(folder: Path, repo_id: str, *, token: str, private: bool = False, api: HfApi | None = None,
           message: str = "Upload") -> str:
    """Create `repo_id` if needed and upload `folder` (resume points and logs left out); returns its URL."""
    api = api or HfApi()
    logger.info("pushing %s to %s%s", folder, repo_id, " (private)" if private else "")
    try:
        url = api.create_repo(repo_id, token=token, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), token=token, repo_type="model",
                          commit_message=message, ignore_patterns=list(IGNORE_PATTERNS))
    except Exception as err:  # every failure of the Hub client: translated, with the token masked
        raise hub_error(err, repo_id, token, action="push to") from None
    return str(url)


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
