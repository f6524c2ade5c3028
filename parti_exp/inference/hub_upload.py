"""Uploading a model folder to the Hugging Face Hub (``export ... push_to=user/name``), when huggingface_hub, a token
and the network are there; otherwise the one line that says how to upload it later. Offline (as in the tests) only
that line can be checked."""

from __future__ import annotations

from pathlib import Path


def upload_later(folder: Path, repo_id: str, reason: str) -> str:
    return (f"not uploaded ({reason}); upload it later with: hf upload {repo_id} {folder} . "
            f"(huggingface_hub < 1.0: huggingface-cli upload {repo_id} {folder} .)")


def push_folder(folder: Path, repo_id: str) -> str:
    """Upload ``folder`` to the model repository ``repo_id``; what happened, as a line for the user."""
    try:
        from httpx import HTTPError  # huggingface_hub >= 1.0 reaches the Hub through httpx
        from huggingface_hub import HfApi, get_token
    except ImportError:
        return upload_later(folder, repo_id, "huggingface_hub is not installed: pip install 'parti_exp[hub]'")
    token = get_token()
    if token is None:
        return upload_later(folder, repo_id, "no Hugging Face token: run `hf auth login` or set HF_TOKEN")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model")
    except (OSError, HTTPError) as error:  # no network, refused, or an HTTP error (the Hub's derive from OSError)
        return upload_later(folder, repo_id, f"the Hub could not be reached or refused it: {error}")
    return f"uploaded {folder} to https://huggingface.co/{repo_id} ({commit.commit_url})"
