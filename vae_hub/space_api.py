"""The Space's API as its callers meet it: every endpoint parameter named and typed as it is accepted, refusals in
one line, and a fair share of the queue for each kind of work, whoever sends the request (a browser,
``gradio_client``, raw HTTP).

Gradio's own defaults show its internals to API callers: ``param_4`` for a ``*args`` parameter, and
``QueueError: Queue is full!`` for any refused request. The hooks here replace them, and each says which part of
Gradio it relies on.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import re
from collections.abc import Callable, Sequence

import gradio as gr
from fastapi import Request
from gradio.block_function import BlockFunction
from gradio.data_classes import PredictBodyInternal
from gradio.queueing import Event, Queue
from gradio.route_utils import FnIndexInferError, get_fn
from gradio.server_messages import ProcessCompletedMessage
from gradio.utils import error_payload

from .space_models import clip, cut

log = logging.getLogger("vae_hub.space")
MAX_MESSAGE_CHARS = 400  # a refusal's message and log line
# X-Forwarded-For is only the visitor's address behind a proxy that appends it (Hugging Face Spaces set SPACE_ID);
# anywhere else a client could write any address there.
TRUST_FORWARDED_FOR = bool(os.environ.get("SPACE_ID")) or os.environ.get("VAE_HUB_SPACE_BEHIND_PROXY") == "1"
# Refusals waiting in their session's stream (see ``Admission.refuse``): bounded for clients that never read it.
MAX_UNDELIVERED_REFUSALS = 256
API_PAGE = "this Space's API page (\"Use via API\" at the bottom of the page)"


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


class Admission:
    """Who may join Gradio's queue: wraps ``Queue.push``, which the /queue/join and /call routes call.

    Two shares, each with its own bounds: the events of the ``heavy`` concurrency group (they run the network) and
    all others (a model's description, its About: cheap views that must keep working while the model's line is
    full). In each share a visitor's new request is refused while it already has ``per_session`` requests (per
    browser tab or API client: Gradio's session hash) or ``per_address`` (per IP address) waiting or running, or
    while the share holds ``share_size``, so that one client cannot fill the queue for everyone."""

    def __init__(self, queue: Queue, per_session: int, per_address: int, share_size: int, heavy: str):
        self.queue, self.push = queue, queue.push
        self.per_session, self.per_address, self.share_size, self.heavy = per_session, per_address, share_size, heavy
        self.undelivered: dict[str, str] = {}  # refusal's event id → its session
        queue.push = self.fair_push

    def share(self, fn: BlockFunction) -> str:
        return "heavy" if fn.concurrency_id == self.heavy else "light"

    def pending(self) -> list[Event]:
        """Every event waiting or running."""
        waiting = [e for q in self.queue.event_queue_per_concurrency_id.values() for e in q.queue]
        return waiting + [e for job in self.queue.active_jobs if job for e in job]

    def over_share(self, fn: BlockFunction, session: str | None, address: str) -> str | None:
        """Why a new request of ``fn`` is refused, or None."""
        mine = [e for e in self.pending() if self.share(e.fn) == self.share(fn)]
        if sum(e.session_hash == session for e in mine) >= self.per_session:
            who = f"You already have {self.per_session} requests"
        elif sum(visitor_address(e.request) == address for e in mine if e.request is not None) >= self.per_address:
            who = f"Your network address already has {self.per_address} requests"
        elif len(mine) >= self.share_size:
            return f"This Space is busy: {len(mine)} requests are waiting. Please try again in a minute."
        else:
            return None
        return f"{who} waiting: wait for them to finish. This Space shares its queue between visitors."

    async def fair_push(self, body: PredictBodyInternal, request: Request, username: str | None) -> tuple:
        """``Queue.push`` for a request within its share; else its refusal (both: (accepted, event id or message,
        state))."""
        try:
            fn = get_fn(self.queue.blocks, None, body)
        except (KeyError, FnIndexInferError):
            log.info("refused a request for a missing event %s", clip(body.fn_index))
            return False, f"This Space has no event {clip(body.fn_index)}: {API_PAGE} lists its endpoints.", "error"
        address = visitor_address(request)
        reason = self.over_share(fn, body.session_hash, address)
        if reason is None:
            joined = await self.push(body, request, username)
            if joined[2] != "queue_full":
                return joined
            reason = "This Space is busy: its queue is full. Please try again in a minute."
        log.info("refused a request from %s: %s", address, reason)
        return await self.refuse(body, fn, request, username, reason)

    def forget_delivered(self) -> None:
        """Forget the refusals that their clients have read (or whose session Gradio has dropped)."""
        pending, sessions = self.queue.pending_event_ids_session, self.queue.pending_messages_per_session
        self.undelivered = {e: s for e, s in self.undelivered.items() if e in pending.get(s, ()) and s in sessions}

    async def refuse(self, body: PredictBodyInternal, fn: BlockFunction, request: Request, username: str | None,
                     reason: str) -> tuple:
        """Answer a refused request as one that failed at once: an event registered for its session's stream,
        never queued, whose only message is the refusal. Browsers and gradio_client show it as they show any of
        the Space's errors; a refused join (HTTP 503) would reach a gradio_client user only as "QueueError: Queue
        is full! Please try again.", which ``Client.submit`` raises for any 503 without reading the answer. A
        client that never reads its stream cannot pile refusals up: past ``MAX_UNDELIVERED_REFUSALS`` they are
        plain 503s (the reason in their ``detail``)."""
        queue = self.queue
        self.forget_delivered()
        if len(self.undelivered) >= MAX_UNDELIVERED_REFUSALS:
            return False, reason, "queue_full"
        event = Event(body.session_hash, fn, request, username)
        async with queue.pending_message_lock:  # as Queue.push registers an event for its session's stream
            if event.session_hash not in queue.pending_messages_per_session:
                queue.pending_messages_per_session[event.session_hash] = asyncio.Queue()
            queue.pending_event_ids_session.setdefault(event.session_hash, set()).add(event._id)
        self.undelivered[event._id] = event.session_hash
        queue.send_message(event, ProcessCompletedMessage(output=error_payload(gr.Error(reason), True),
                                                          title="Error", success=False))
        return True, event._id, "success"
