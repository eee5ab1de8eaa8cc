"""Tokens and API calls for the API tests."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from tests.operators import make_operator
from tidings.api.actions import do_create_api_token

ALL_SCOPES = ("read", "write", "send", "privacy")


def token_for(role: str = "owner", scopes=ALL_SCOPES, username: str | None = None) -> str:
    """A new operator with ``role`` and a token of theirs with ``scopes``; returns the token."""
    user = make_operator(username or f"{role}-api", role)
    _, text = do_create_api_token(name="test", operator=user, scopes=scopes, actor=user)
    return text


class Api:
    """Calls /api/ with a bearer token; JSON in, the response out."""

    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _call(self, method: str, path: str, body: Any = None, **kwargs: Any):
        if body is not None:
            kwargs.setdefault("content_type", "application/json")
            kwargs["data"] = json.dumps(body)
        return getattr(self.client, method)(f"/api{path}", headers=self.headers, **kwargs)

    def get(self, path: str, **params: Any):
        return self.client.get(f"/api{path}", params, headers=self.headers)

    def post(self, path: str, body: Any = None, **kwargs: Any):
        return self._call("post", path, body if body is not None else {}, **kwargs)

    def patch(self, path: str, body: Any):
        return self._call("patch", path, body)

    def delete(self, path: str):
        return self.client.delete(f"/api{path}", headers=self.headers)
