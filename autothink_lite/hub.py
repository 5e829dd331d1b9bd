"""Share a trained adapter on the Hugging Face Hub: push the LoRA adapter folder with its model card.

Pulling one back is `adapters.pull_adapter`; the Hub client calls and their error messages are `hub_client`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from huggingface_hub import HfApi

from autothink_lite.adapters import check_adapter_folder
from autothink_lite.card import is_generated_stub, write_model_card
from autothink_lite.hub_client import HubError, check_repo_id, upload, upload_token

logger = logging.getLogger(__name__)


def push_adapter(adapter_dir: str | Path, repo_id: str, *, private: bool = False, token: str | None = None,
                 api: HfApi | None = None) -> str:
    """Create `repo_id` if needed and upload the adapter folder (weights, config, tokenizer, card, plots).

    Writes the model card first when the folder has none (or only peft's / trl's generated stub).
    Returns the repository's URL.
    """
    adapter = Path(adapter_dir)
    check_adapter_folder(adapter, HubError)
    check_repo_id(repo_id)
    token = upload_token(token)
    readme = adapter / "README.md"
    if not readme.is_file() or is_generated_stub(readme):
        write_model_card(adapter, repo_id=repo_id)
    url = upload(adapter, repo_id, token=token, private=private, api=api, message="Upload AutoThink LoRA adapter")
    logger.info("adapter pushed to %s", url)
    return url
