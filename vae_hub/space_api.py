"""The Space's API as its callers meet it: every endpoint parameter named and typed as it is accepted, a fair
share of the queue for each kind of work, and one line in the Space's words for every request it cannot take,
whoever sends it (a browser, ``gradio_client``, raw HTTP).

Gradio's defaults show its internals to API callers: component objects (``<… object at 0x…>``) for a call with
too few inputs, its preprocessing errors ("Could not preprocess input component at index 5 …"), pydantic's errors
with their URLs for a malformed body, ``param_4`` for a ``*args`` parameter, and ``QueueError: Queue is full!``
for any refused request. The hooks here replace them; each says which part of Gradio it relies on.
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
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from gradio.block_function import BlockFunction
from gradio.data_classes import PredictBodyInternal
from gradio.queueing import Event, Queue
from gradio.route_utils import FnIndexInferError, get_fn
from gradio.server_messages import ProcessCompletedMessage
from gradio.utils import error_payload
from gradio_client.utils import json_schema_to_python_type
from starlette.middleware import Middleware

from .space_models import clip, cut


log = logging.getLogger("vae_hub.space")
MAX_MESSAGE_CHARS = 400  # a refusal's message and log line
# X-Forwarded-For is only the visitor's address behind a proxy that appends it (Hugging Face Spaces set SPACE_ID);
# anywhere else a client could write any address there.
TRUST_FORWARDED_FOR = bool(os.environ.get("SPACE_ID")) or os.environ.get("VAE_HUB_SPACE_BEHIND_PROXY") == "1"
# Refusals waiting in their session's stream (see ``Admission.refuse``): bounded for clients that never read it.
MAX_UNDELIVERED_REFUSALS = 256
API_PAGE = 'this Space\'s API page ("Use via API" at the bottom of the page)'


def refuse(where: str, err: Exception | str) -> gr.Error:
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


def expected(component: gr.components.Component) -> str:
    """What a component takes, in words, from the type that the API page documents for it."""
    info = component.api_info()
    if "enum" in info:
        return "one of the values listed on " + API_PAGE
    words = {"integer": "a whole number", "number": "a number", "string": "text", "boolean": "true or false"}
    documented = json_schema_to_python_type(info)
    if "filepath" in documented:
        return 'a file (gradio_client: handle_file(path); HTTP: {"path": …} of a file sent to /gradio_api/upload)'
    return words.get(info.get("type"), f"a value of type {documented}")


def plain_input_errors(demo: gr.Blocks) -> None:
    """Make every input component read the values its API documents, and answer one it cannot read in one line.

    Gradio's own checks (a radio value not among the choices, a number above its maximum) raise a ``gr.Error``
    that quotes the whole value and prints a traceback; a conversion that fails (NaN for a whole number) becomes
    "Could not preprocess input component at index …" with the error's type. Both become one short log line and
    one short message, like the Space's own."""
    for block in demo.blocks.values():
        if isinstance(block, gr.components.Component) and callable(getattr(block, "preprocess", None)):
            block.preprocess = _readable(block, block.preprocess)


def _readable(component: gr.components.Component, preprocess: Callable) -> Callable:
    where = f"{component.get_block_name()} input"

    def checked(payload):
        try:
            return preprocess(documented_choice(component, payload))
        except gr.Error as err:
            if not err.print_exception:  # already one of ours
                raise
            raise refuse(where, err) from err
        except Exception as err:  # Gradio's conversion of the value failed
            name = component.label or component.get_block_name()
            # a plain JSON value is echoed (cut short); a file reference Gradio has parsed would show its classes
            got = f"; got {clip(payload)}" if payload is None or isinstance(payload, (str, int, float)) else ""
            raise refuse(where, f"{name} must be {expected(component)}{got}.") from err

    return checked


# ==================================================================================== malformed calls
def endpoint_name(block_fn: BlockFunction) -> str:
    return f"/{block_fn.api_name}" if block_fn.api_name else "This event"


def parameter_names(block_fn: BlockFunction) -> list[str]:
    """The names of an event's inputs as its API documents them (a component's label where a name is missing)."""
    names = list(block_fn.input_parameter_names) + [None] * len(block_fn.inputs)
    return [
        name or getattr(block, "label", None) or f"input {i + 1}"
        for i, (name, block) in enumerate(zip(names, block_fn.inputs, strict=False))
    ]


def unreadable_input(block_fn: BlockFunction, inputs: list) -> str:
    """What is wrong with the first input whose value does not have its component's data shape (a file reference
    that is not one), in words."""
    for name, block, value in zip(parameter_names(block_fn), block_fn.inputs, inputs, strict=False):
        model = getattr(block, "data_model", None)
        if model is not None and value is not None:
            try:
                model.model_validate(value)
            except ValueError:  # pydantic's ValidationError
                return f"{name} must be {expected(block)}"
    return "an input could not be read"


def plain_call_errors(demo: gr.Blocks) -> None:
    """Answer a call whose inputs Gradio cannot read with one line that names the endpoint's parameters.

    Wraps ``Blocks.preprocess_data`` (every input is read there, before any of the Space's code runs: its count
    checked, files moved to the cache, file references validated by pydantic, components' ``preprocess``). It
    also stands in for ``plain_input_errors`` where a session has its own copy of a component (Gradio makes one,
    without the wrapper, when an event updates the component's settings for that session)."""
    preprocess_data = demo.preprocess_data

    async def readable(block_fn: BlockFunction, inputs: list, *args, **kwargs):
        where, names = endpoint_name(block_fn), parameter_names(block_fn)
        if len(inputs) < len(block_fn.inputs):
            raise refuse(
                where, f"{where} takes {len(names)} inputs ({', '.join(names)}); this call sent {len(inputs)}."
            )
        try:
            return await preprocess_data(block_fn, inputs, *args, **kwargs)
        except gr.Error as err:
            if not err.print_exception:  # already one of ours
                raise
            raise refuse(where, err) from err
        except Exception as err:
            raise refuse(
                where,
                f"{where}: {unreadable_input(block_fn, inputs)}. Its inputs are "
                f"{', '.join(names)}; {API_PAGE} gives their types.",
            ) from err

    demo.preprocess_data = readable


def malformed_body(request: Request, err: RequestValidationError) -> JSONResponse:
    """A body that is not JSON, or not of the route's shape: 422 and one line (FastAPI answers with pydantic's
    errors, their inputs echoed and their documentation URLs)."""
    first = (err.errors() or [{}])[0]
    if first.get("type") == "json_invalid":
        problem = "it is not valid JSON"
    else:  # the first field that does not fit, as "data: input should be a valid list"
        field = ".".join(str(part) for part in first.get("loc", ())[1:]) or "the body"
        problem = f"{field}: {str(first.get('msg', 'not readable')).rstrip('.').lower()}"
    message = (
        f"This request's body is not what {request.url.path} takes ({problem}). Send JSON like "
        f'{{"data": [...]}}, one value per parameter, as {API_PAGE} shows.'
    )
    log.info("refused a malformed body for %s: %s", request.url.path, cut(problem, 200))
    return JSONResponse({"detail": message}, status_code=422)


def no_such_endpoint(request: Request, err: FnIndexInferError) -> JSONResponse:
    """A call to an endpoint this Space does not have: 404 and one line (Gradio answers 500)."""
    name = clip(request.path_params.get("api_name", ""))
    log.info("refused a call to a missing endpoint %s", name)
    return JSONResponse(
        {"detail": f"This Space has no API endpoint named {name}: {API_PAGE} lists them."}, status_code=404
    )


class PlainServerErrors:
    """The last resort for an exception that no route turned into an answer: one log line, and one line to the
    caller, instead of Starlette's "Internal Server Error" and a full traceback in the log for each such request.
    An ASGI middleware (not an exception handler: Starlette re-raises after those, and the server logs it)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as err:
            if started:  # too late for an answer
                raise
            frame = err.__traceback__
            while frame.tb_next:
                frame = frame.tb_next
            where = f"{os.path.basename(frame.tb_frame.f_code.co_filename)}:{frame.tb_lineno}"
            log.warning(
                "%s %s failed: %s: %s (%s)",
                scope.get("method"),
                cut(scope.get("path", ""), 200),
                type(err).__name__,
                cut(str(err), 200),
                where,
            )
            answer = JSONResponse(
                {
                    "detail": "This request could not be handled (it has been logged): check the "
                    f"endpoint's name and inputs against {API_PAGE}."
                },
                status_code=500,
            )
            await answer(scope, receive, send)


def app_options() -> dict:
    """``app_kwargs`` for ``Blocks.launch`` (a fresh dict each time: Gradio writes into it): the FastAPI app that
    Gradio builds answers malformed requests in one line."""
    return {
        "exception_handlers": {RequestValidationError: malformed_body, FnIndexInferError: no_such_endpoint},
        "middleware": [Middleware(PlainServerErrors)],
    }


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

    async def refuse(
        self, body: PredictBodyInternal, fn: BlockFunction, request: Request, username: str | None, reason: str
    ) -> tuple:
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
        queue.send_message(
            event, ProcessCompletedMessage(output=error_payload(gr.Error(reason), True), title="Error", success=False)
        )
        return True, event._id, "success"
