"""Errors of the ``openai`` model source: each names the endpoint and what would fix the problem.

Answers received before an error are already in the response cache: a rerun asks only for the rest.
"""

from __future__ import annotations

from fute_kit.plugin import FuteError

RESUME_HINT = "answers received so far are cached: rerunning asks only for the missing ones"


class EndpointError(FuteError):
    """A request to an OpenAI-compatible endpoint failed for good."""

    def __init__(self, endpoint: str, problem: str, fix: str) -> None:
        self.endpoint = endpoint
        self.problem = problem
        self.fix = fix
        super().__init__(f"{endpoint}: {problem}; {fix}")


class MissingAPIKeyError(EndpointError):
    """No API key in the configured environment variable for a non-local endpoint."""


class AuthenticationError(EndpointError):
    """The endpoint refused the API key (401/403)."""


class UnknownModelError(EndpointError):
    """The endpoint does not serve the configured model (404)."""


class BadRequestError(EndpointError):
    """The endpoint rejected the request itself (400, 422): a parameter it does not accept."""


class RateLimitedError(EndpointError):
    """Still rate limited (429) after every retry."""


class ServerError(EndpointError):
    """The server kept failing (5xx) after every retry."""


class EndpointTimeoutError(EndpointError):
    """Requests kept timing out after every retry."""


class EndpointConnectionError(EndpointError):
    """The endpoint could not be reached (refused or dropped connections) after every retry."""


class MalformedResponseError(EndpointError):
    """The endpoint answered with something that is not an OpenAI-style JSON response."""


class NoLogprobsError(EndpointError):
    """The endpoint returned no token log-probabilities although ``mode = "logprobs"`` asked for them."""


class BatchError(EndpointError):
    """An OpenAI Batch API job failed, expired or was cancelled."""
