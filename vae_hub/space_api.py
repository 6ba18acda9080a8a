"""The Space's API as its callers meet it: every endpoint parameter named and typed as it is accepted, refusals in
one line, and a fair share of the queue for each visitor.

Gradio's own defaults show its internals to API callers (``param_4`` for a ``*args`` parameter, for one); the hooks
here replace them, and each says which part of Gradio it relies on.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from collections.abc import Callable, Sequence

import gradio as gr

from .space_models import cut

log = logging.getLogger("vae_hub.space")
MAX_MESSAGE_CHARS = 400  # a refusal's message and log line
# X-Forwarded-For is only the visitor's address behind a proxy that appends it (Hugging Face Spaces set SPACE_ID);
# anywhere else a client could write any address there.
TRUST_FORWARDED_FOR = bool(os.environ.get("SPACE_ID")) or os.environ.get("VAE_HUB_SPACE_BEHIND_PROXY") == "1"


def refuse(where: str, err: Exception) -> gr.Error:
    """A user's mistake: one log line (no traceback, the input cut short), the message as a ``gr.Error``."""
    # a long run without spaces is a quoted value (Gradio quotes a radio value whole): cut it, keep the words
    message = cut(re.sub(r"\S{81,}", lambda m: m.group(0)[:80] + "…", str(err)), MAX_MESSAGE_CHARS)
    log.info("refused %s: %s", where, message)
    return gr.Error(message, print_exception=False)


# ==================================================================================== names and types
def with_parameter_names(fn: Callable, names: Sequence[str], default=None) -> Callable:
    """``fn`` with its ``*args`` documented as the positional parameters ``names`` (each defaulting to ``default``).
    Gradio names an API parameter after the function parameter it fills, and a ``*args`` value only ``param_<i>``;
    the values still arrive positionally."""
    parameters = list(inspect.signature(fn).parameters.values())
    star = next(i for i, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_POSITIONAL)
    named = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default) for name in names]
    fn.__signature__ = inspect.Signature(parameters[:star] + named)
    return fn


def documented_choice(component: gr.components.Component, payload):
    """The choice a payload stands for: the API page documents every choice as a string (``Literal['1', …]``:
    ``gradio_client`` quotes each value of the schema's enum), so a numeric choice is also taken as its string."""
    if isinstance(payload, str):
        for _, value in getattr(component, "choices", None) or ():
            if not isinstance(value, str) and str(value) == payload:
                return value
    return payload


def quiet_input_errors(demo: gr.Blocks) -> None:
    """Make every input component read the values its API documents. Gradio's own input checks (a radio value not
    among the choices, a number above its maximum) raise a ``gr.Error`` that quotes the whole value and prints a
    traceback: make each of them one short log line and one short message, like ours."""
    for block in demo.blocks.values():
        if isinstance(block, gr.components.Component) and callable(getattr(block, "preprocess", None)):
            block.preprocess = _quiet(block, block.preprocess)


def _quiet(component: gr.components.Component, preprocess: Callable) -> Callable:
    where = f"{component.get_block_name()} input"

    def checked(payload):
        try:
            return preprocess(documented_choice(component, payload))
        except gr.Error as err:
            if not err.print_exception:  # already one of ours
                raise
            raise refuse(where, err) from err

    return checked


# ==================================================================================== the queue
def visitor_address(request) -> str:
    """The visitor's IP address: behind the Hugging Face Spaces proxy, the hop it appended to X-Forwarded-For."""
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    if hops and TRUST_FORWARDED_FOR:
        return hops[-1]
    return request.client.host if request.client else "unknown"


def share_queue_fairly(queue, per_session: int, per_address: int) -> None:
    """Refuse a visitor's new request while it already has ``per_session`` requests (per browser tab or API
    client: Gradio's session hash) or ``per_address`` (per IP address) waiting or running, so that one client
    cannot fill the queue for everyone. Wraps Gradio's ``Queue.push``, which the /queue/join route calls."""
    push = queue.push

    async def fair_push(body, request, username):
        mine = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue]
        mine += [e for job in queue.active_jobs if job for e in job]
        address = visitor_address(request)
        same_session = sum(e.session_hash == body.session_hash for e in mine)
        same_address = sum(visitor_address(e.request) == address for e in mine if e.request is not None)
        if same_session >= per_session:
            who = f"You already have {per_session} requests"
        elif same_address >= per_address:
            who = f"Your network address already has {per_address} requests"
        else:
            return await push(body, request, username)
        log.info("refused a request from %s: %s waiting", address, who.split(" ", 1)[1])
        message = f"{who} waiting: wait for them to finish. This Space shares its queue between visitors."
        return False, message, "queue_full"

    queue.push = fair_push
