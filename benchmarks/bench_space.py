"""Speed of the Space: its endpoint functions in-process, and HTTP latency under concurrent gradio_client users.

    python benchmarks/bench_space.py                       # the shipped models space/models/fashion-mnist-{vae,ldm}
    python benchmarks/bench_space.py --model /tmp/my-vae   # any VAEModel folder or Hub id
    python benchmarks/bench_space.py --pipeline /tmp/ldm   # any LatentDiffusionPipeline folder or Hub id
    python benchmarks/bench_space.py --hostile             # only: the server's memory across a hostile burst

Targets (issue 5, on this machine's CPU): 64 prior samples < 150 ms, a 10-frame interpolation < 100 ms, a
15×15 manifold < 300 ms (the ``Explorer`` methods, called in-process, images as PIL), and the p95 latency of
16 concurrent users < 1 s over HTTP. Issue 12: /diffuse with 16 images and the pipeline's default steps < 1 s
in-process (the whole streamed request: previews and GIF; beside it, in the same run, the final grid alone and
the bare pipeline call), and 16 concurrent users on /diffuse with 0 errors (p95 reported). Writes its table into
``benchmarks/RESULTS.md`` between the ``<!-- bench_space -->`` markers, leaving the rest of the file alone.
"""

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import PIL.Image  # noqa: E402
import torch  # noqa: E402

from vae_hub import explore  # noqa: E402
from vae_hub.explore import Explorer  # noqa: E402
from vae_hub.space_models import public_ids  # noqa: E402


SHIPPED = REPO / "space" / "models" / "fashion-mnist-vae"
SHIPPED_PIPELINE = REPO / "space" / "models" / "fashion-mnist-ldm"
DIFFUSE_IMAGES = 16
EXAMPLES = REPO / "space" / "examples"
BEGIN, END = "<!-- bench_space -->", "<!-- /bench_space -->"
SLIDERS = [0.0] * explore.TRAVERSE_SLIDERS


def timed(fn, repeats: int) -> list[float]:
    """Milliseconds of ``fn(i)`` for i in 1 … repeats, after one untimed warm-up call ``fn(0)``."""
    return timed_together([fn], repeats)[0]


def timed_together(fns: list, repeats: int) -> list[list[float]]:
    """``timed`` for each of ``fns``, their calls interleaved (round i calls each ``fn(i)`` in turn), so that a
    change in the load of these shared cores during the run weighs on all of them alike and their ratios hold."""
    for fn in fns:
        fn(0)
    times = [[] for _ in fns]
    for i in range(1, repeats + 1):
        for fn, own in zip(fns, times):
            start = time.perf_counter()
            fn(i)
            own.append((time.perf_counter() - start) * 1000)
    return times


def share_cores_as_the_space() -> int:
    """Torch's threads per request as ``space/app.py`` sets them (``explore.share_cores`` for its concurrent
    requests), so that in-process timings are the Space's; returns them."""
    from space_helpers import load_app

    return explore.share_cores(load_app().MODEL["concurrency_limit"])


def at_threads(threads: int, fn):
    """``fn`` run with torch's intra-op threads at ``threads``, then back to what they were."""

    def call(i: int):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return fn(i)
        finally:
            torch.set_num_threads(before)

    return call


def local_id(ex: Explorer) -> str:
    """The id under which an ``Explorer`` of one folder offers it: a configured folder goes by its name, not its
    path (``space_models.public_ids``)."""
    return ex.model_ids[0]


def served_ids(models: list[str]) -> list[str]:
    """The ids under which the Space that ``running_space(models)`` starts offers ``models``, worked out as the
    Space does it: a folder by its name, with ``-2`` when a shipped model has that name already."""
    ids, shipped = explore.default_model_ids(REPO / "space", {"VAE_MODEL": ",".join(models)})
    return public_ids(ids, shipped)[0][: len(models)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def in_process(folder: str, repeats: int) -> list[tuple[str, list[float], float | None]]:
    ex = Explorer([folder], {})
    model = local_id(ex)
    if problem := ex.warm(model):
        sys.exit(f"cannot use {model}: {problem}")
    example = PIL.Image.open(sorted(EXAMPLES.glob("*.png"))[0])
    entry = ex.entry(model)
    cases = [
        ("64 prior samples (`/sample`)", lambda i: ex.sample(model, 64, i, 1.0, "standard"), 150.0),
        (
            "10-frame interpolation, seeds (`/interpolate`, with the GIF)",
            lambda i: ex.interpolate(model, "seeds", None, None, i, i + 1, "slerp", 10),
            100.0,
        ),
        # the endpoint caches its grid per model and size; time the computation, not the cache
        (
            "15×15 manifold (`/manifold`, uncached)",
            lambda i: explore.manifold(entry.model, entry.latent_map, 15),
            300.0,
        ),
        ("reconstruction with posterior chart (`/reconstruct`)", lambda i: ex.reconstruct(model, example), None),
        (
            "traversal: decode + 11-image sweep (`/traverse`)",
            lambda i: ex.traverse(model, "origin", None, 1, (i % 8) / 2, *SLIDERS[1:]),
            None,
        ),
        ("decode a map point (`/decode_point`)", lambda i: ex.decode_point(model, i / repeats, -i / repeats), None),
    ]
    return [(name, timed(fn, repeats), target) for name, fn, target in cases]


def in_process_diffusion(pipeline: str, repeats: int) -> dict:
    """/diffuse in-process with ``DIFFUSE_IMAGES`` images, the pipeline's default steps and guidance and the Space's
    default scheduler: the whole streamed request (``Explorer.diffuse``: x0 previews, final grid, GIF), the final
    grid alone (``denoise`` without previews, as /compare runs it), the bare pipeline call (its own decode, no grid),
    and one VAE decode of that many latents (what each preview adds). Returns {"cases": [(name, ms list, target)],
    "previews": previews per request, "steps", "guidance"}."""
    ex = Explorer([pipeline], {})
    pipeline = local_id(ex)
    if problem := ex.warm(pipeline):
        sys.exit(f"cannot use {pipeline}: {problem}")
    pipe = ex.entry(pipeline).model
    steps, guidance = explore.pipeline_defaults(pipe)
    scheduler = "DPM-Solver++"  # the Space's default
    bare = explore.private_copy(pipe, scheduler)
    x0 = torch.randn(
        DIFFUSE_IMAGES, pipe.unet.config.in_channels, pipe.unet.config.sample_size, pipe.unet.config.sample_size
    )

    def labels(i: int) -> list[int] | None:
        return explore.class_labels(pipe, explore.ANY_CLASS, DIFFUSE_IMAGES, i)

    def streamed(i: int) -> list[tuple]:
        return list(ex.diffuse(pipeline, explore.ANY_CLASS, DIFFUSE_IMAGES, steps, guidance, i, scheduler))

    def final_grid(i: int) -> PIL.Image.Image:
        *_, (_, images) = explore.denoise(pipe, labels(i), DIFFUSE_IMAGES, steps, guidance, i, scheduler, previews=0)
        return explore.show(images)

    @torch.inference_mode()
    def pipeline_call(i: int) -> None:
        bare(
            labels(i),
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=torch.Generator().manual_seed(i),
            output_type="pt",
        )

    @torch.inference_mode()
    def decode(i: int) -> None:
        pipe.decode_latents(x0)

    name = f"{DIFFUSE_IMAGES} images, {steps} steps"
    cases = [
        (f"{name}, streamed (`/diffuse`: x0 previews, grid, GIF)", streamed, 1000.0),
        (f"{name}, the final grid alone (no previews, no GIF)", final_grid, None),
        (f"{name}, the bare pipeline call (reference)", pipeline_call, None),
        (f"one VAE decode of {DIFFUSE_IMAGES} latents (each preview is one)", decode, None),
    ]
    previews = sum(grid is None for _, grid, _ in streamed(0))
    times = timed_together([fn for _, fn, _ in cases], repeats)
    return {
        "cases": [(name, ms, target) for (name, _, target), ms in zip(cases, times)],
        "previews": previews,
        "steps": steps,
        "guidance": guidance,
    }


SCENARIOS = ("mixed", "paced", "same", "diffuse")


def no_results(endpoints: tuple[str, ...] = ()) -> dict:
    """Latencies (ms) and error counts per HTTP scenario, the mixed scenario's latencies per endpoint, and the
    number of previews each /diffuse answer streamed."""
    return {
        **{kind: [] for kind in SCENARIOS},
        "errors": dict.fromkeys(SCENARIOS, 0),
        "endpoints": {name: [] for name in endpoints},
        "previews": [],
    }


def over_http(
    model: str,
    pipeline: str,
    diffusion: tuple[int, float],
    users: int,
    per_user: int,
    diffuse_per_user: int,
    log: Path,
) -> dict:
    """The HTTP scenarios against a Space serving ``model`` and ``pipeline`` (/diffuse with ``diffusion`` = (steps,
    guidance)): latencies in ms per scenario (``no_results``)."""
    import httpx
    from gradio_client import Client, handle_file
    from space_helpers import running_space

    example = str(sorted(EXAMPLES.glob("*.png"))[0])
    mixed = [  # (endpoint, call)
        (
            "sample",
            lambda c, r: c.predict(model, r.randint(16, 64), r.randint(0, 10**6), 1.0, "standard", api_name="/sample"),
        ),
        (
            "interpolate",
            lambda c, r: c.predict(
                model, "seeds", None, None, r.randint(0, 99), r.randint(100, 199), "slerp", 10, api_name="/interpolate"
            ),
        ),
        ("manifold", lambda c, r: c.predict(model, 15, api_name="/manifold")),
        ("reconstruct", lambda c, r: c.predict(model, handle_file(example), api_name="/reconstruct")),
        (
            "traverse",
            lambda c, r: c.predict(model, "origin", None, 1, r.uniform(-3, 3), *SLIDERS[1:], api_name="/traverse"),
        ),
    ]
    results = no_results(tuple(name for name, _ in mixed))
    lock = threading.Lock()
    # gradio_client builds a new TLS context (loading the whole CA bundle, ~30 ms of CPU) for each of the three
    # HTTP calls of every predict, even to an http:// URL. On a real user's machine that CPU is theirs; here it
    # would be taken from the server's two cores, so every client gets one verifying context made once (the
    # same certificates and checks as httpx's default).
    tls = httpx.create_ssl_context()
    with running_space([model, pipeline], log) as space, tempfile.TemporaryDirectory() as downloads:
        model, pipeline = served_ids([model, pipeline])  # the lambdas above read these names when called
        clients = [
            Client(
                space.url, verbose=False, analytics_enabled=False, download_files=f"{downloads}/{u}", ssl_verify=tls
            )
            for u in range(users)
        ]

        def run(kind: str, call, client, endpoint: str = "") -> None:
            start = time.perf_counter()
            try:
                call(client)
                ms = (time.perf_counter() - start) * 1000
                with lock:
                    results[kind].append(ms)
                    if kind == "mixed":
                        results["endpoints"][endpoint].append(ms)
            except Exception as err:  # count it; a benchmark reports failures instead of stopping
                with lock:
                    results["errors"][kind] += 1
                print(f"error in a {kind} request: {err}", file=sys.stderr)

        def user(u: int, kind: str = "mixed") -> None:
            rng = random.Random(u)
            for k in range(per_user):
                if kind == "paced":  # a person looks at the result before the next click
                    time.sleep(rng.uniform(0.5, 1.5))
                endpoint, call = mixed[(u + k) % len(mixed)]
                run(kind, lambda c: call(c, rng), clients[u], endpoint)

        def diffuse(client, rng) -> None:  # the whole streamed answer; it must have streamed previews
            job = client.submit(
                pipeline, "any", DIFFUSE_IMAGES, *diffusion, rng.randint(0, 10**6), "DPM-Solver++", api_name="/diffuse"
            )
            job.result()
            previews = len(job.outputs()) - 1
            with lock:
                results["previews"].append(previews)
            if previews < 1:
                raise RuntimeError("/diffuse streamed no preview")

        with ThreadPoolExecutor(users) as pool:  # warm-up: every client once, and the pipeline loaded
            list(pool.map(lambda c: c.predict(model, 4, 0, 1.0, "standard", api_name="/sample"), clients))
            clients[0].predict(pipeline, "any", 1, 2, 1.0, 0, "DPM-Solver++", api_name="/diffuse")
            server, client = space.cpu_seconds(), time.process_time()
            list(pool.map(user, range(users)))
            count = len(results["mixed"]) + results["errors"]["mixed"]
            results["cpu_ms"] = {
                "server": (space.cpu_seconds() - server) * 1000 / count,
                "clients": (time.process_time() - client) * 1000 / count,
            }
            list(pool.map(lambda u: user(u, "paced"), range(users)))
            barrier = threading.Barrier(users)

            def same(u: int) -> None:  # everyone presses Sample with the default seed at once
                barrier.wait()
                run("same", lambda c: c.predict(model, 36, 0, 1.0, "standard", api_name="/sample"), clients[u])

            list(pool.map(same, range(users)))

            def diffusing(u: int) -> None:  # everyone presses Diffuse, back to back
                rng = random.Random(1000 + u)
                for _ in range(diffuse_per_user):
                    run("diffuse", lambda c: diffuse(c, rng), clients[u])

            server = space.cpu_seconds()
            list(pool.map(diffusing, range(users)))
            count = len(results["diffuse"]) + results["errors"]["diffuse"]
            results["cpu_ms"]["diffuse_server"] = (space.cpu_seconds() - server) * 1000 / count
        for client in clients:
            client.close()
    return results


def hostile_burst(model: str, log: Path, rounds: int = 2) -> dict:
    """The server's resident memory (MB) across ``rounds`` bursts of the hostile requests of issue 14, each kind
    sent from 8 threads: a config implying 2.5 GB, 300 distinct failing ids and 20 ids of 1 MB, 10000×10000
    sketches and uploads, files that are not images, typed server paths, and 40 queue joins from one session."""
    import httpx
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    from space_helpers import running_space
    from test_hostile import blank_png, hostile_folder, rss

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hostile = str(hostile_folder(tmp / "hostile"))
        huge, text = blank_png(tmp / "huge.png", 10_000, 10_000), tmp / "notes.png"
        text.write_text("not a picture")
        with running_space([model, hostile], log) as space:
            model, hostile = served_ids([model, hostile])
            client = Client(space.url, verbose=False, analytics_enabled=False, download_files=str(tmp / "dl"))
            example = str(sorted(EXAMPLES.glob("*.png"))[0])
            for n in (16, 64, 64):  # warm: every kind of normal request, the largest sample too
                client.predict(model, n, 0, 1.0, "standard", api_name="/sample")
                client.predict(model, handle_file(example), api_name="/reconstruct")
            sketch = {"background": None, "layers": [], "composite": handle_file(str(huge))}
            kinds = {
                "config implying 2.5 GB": [lambda: client.predict(hostile, 4, 0, 1.0, "standard", api_name="/sample")]
                * 3,
                "300 distinct failing ids": [
                    lambda i=i: client.predict(f"nobody/missing-{i}", api_name="/about") for i in range(300)
                ],
                "20 ids of 1 MB": [
                    lambda i=i: client.predict(f"{i}/" + "x" * 2**20, api_name="/about") for i in range(20)
                ],
                "20 sketches of 10000² px": [lambda: client.predict(model, sketch, api_name="/reconstruct_sketch")]
                * 20,
                "20 uploads of 10000² px": [
                    lambda: client.predict(model, handle_file(str(huge)), api_name="/reconstruct")
                ]
                * 20,
                "20 files that are not images": [
                    lambda: client.predict(model, handle_file(str(text)), api_name="/reconstruct")
                ]
                * 20,
                "20 typed server paths": [
                    lambda p=p: client.predict(p, api_name="/about") for p in ("~", "/proc/self/cwd", "/etc", "..")
                ]
                * 5,
            }
            fn_index = next(i for i, d in enumerate(client.config["dependencies"]) if d.get("api_name") == "sample")
            body = {
                "data": [model, 64, 0, 1.0, "standard"],
                "fn_index": fn_index,
                "session_hash": "greedy",
                "event_data": None,
                "trigger_id": None,
            }
            result = {
                "requests": 0,
                "refused": 0,
                "client_errors": 0,
                "rss": [rss(space.pid) / 2**20],
                "after_kind": {},
            }
            log_start = log.stat().st_size

            def call(fn) -> int:
                try:
                    fn()
                    return 0
                except AppError:
                    return 1
                except Exception:  # refused by the fair share (8 threads share one session), or a client-side race
                    result["client_errors"] += 1
                    return 1

            for _ in range(rounds):
                with ThreadPoolExecutor(8) as pool:
                    for kind, calls in kinds.items():
                        result["refused"] += sum(pool.map(call, calls))
                        result["requests"] += len(calls)
                        result["after_kind"].setdefault(kind, []).append(rss(space.pid) / 2**20)
                with httpx.Client(timeout=30) as http:
                    joins = [http.post(f"{space.url}gradio_api/queue/join", json=body).status_code for _ in range(40)]
                result["requests"] += len(joins)
                result["refused"] += joins.count(503)
                time.sleep(10)  # the accepted joins finish
                result["rss"].append(rss(space.pid) / 2**20)
            result["peak"] = rss(space.pid, "VmHWM") / 2**20
            result["log_kb"] = (log.stat().st_size - log_start) / 1024
            client.close()
            return result


HOSTILE_BEGIN, HOSTILE_END = "<!-- bench_space_hostile -->", "<!-- /bench_space_hostile -->"


def hostile_table(result: dict) -> str:
    rounds = len(result["rss"]) - 1
    last_kind = list(result["after_kind"].values())[-1]
    hostile_growth = ", ".join(f"{last_kind[r] - result['rss'][r]:+.0f}" for r in range(rounds))
    return "\n".join(
        [
            HOSTILE_BEGIN,
            "### The Space under hostile bursts (`python benchmarks/bench_space.py --hostile`)",
            "",
            "| server RSS, MB | "
            + " | ".join(["before"] + [f"after burst {r + 1}" for r in range(rounds)] + ["peak"])
            + " |",
            "|---|" + "---:|" * (rounds + 2),
            "| | " + " | ".join(f"{v:.0f}" for v in [*result["rss"], result["peak"]]) + " |",
            "",
            f"{result['requests']} requests in {rounds} bursts, {result['refused']} refused"
            + (
                f" ({result['client_errors']} by the fair share: 8 threads share one session)"
                if result["client_errors"]
                else ""
            )
            + f", {result['log_kb']:.0f} kB of "
            "log. Each burst, from 8 threads: "
            + "; ".join(
                f"{kind} (RSS after: {', '.join(f'{v:.0f}' for v in values)} MB)"
                for kind, values in result["after_kind"].items()
            )
            + "; then 40 queue joins of 64 samples from one session (8 accepted). The refused requests changed the RSS by "
            f"{hostile_growth} MB in the successive bursts; the rest is the 8 accepted 64-sample requests, run two at a "
            "time: normal traffic of that kind takes a fresh server from about 640 to 800 MB, where it stays. Before "
            "issue 14, three requests of the first kind alone took the server from 1.4 GB to 11.4 GB, and 300 long ids "
            "added 260 MB.",
            HOSTILE_END,
        ]
    )


def command(model: str, pipeline: str) -> str:
    options = ("" if Path(model) == SHIPPED else f" --model {model}") + (
        "" if Path(pipeline) == SHIPPED_PIPELINE else f" --pipeline {pipeline}"
    )
    return f"python benchmarks/bench_space.py{options}"


def name_of(model: str) -> str:
    return Path(model).name if Path(model).exists() else model


def table(
    model: str,
    pipeline: str,
    local: list,
    diffusion: dict,
    http: dict,
    users: int,
    per_user: int,
    diffuse_per_user: int,
) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    lines = [
        BEGIN,
        "## Space (`benchmarks/bench_space.py`)",
        "",
        f"Model `{name_of(model)}`, pipeline `{name_of(pipeline)}`; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__} with {torch.get_num_threads()} thread(s) per request as the "
        "Space sets them (`explore.share_cores`); load average "
        f"{load[0]:.1f} when written (other jobs share these cores, so the numbers are pessimistic). "
        f"`{command(model, pipeline)}`",
        "",
        "| in-process endpoint function | median ms | p95 ms | target ms | |",
        "|---|---:|---:|---:|---|",
    ]
    for name, times, target in local + diffusion["cases"]:
        p95 = percentile(times, 95)
        verdict = "" if target is None else ("✅" if statistics.median(times) < target else "❌")
        lines.append(f"| {name} | {statistics.median(times):.1f} | {p95:.1f} | {target or '–'} | {verdict} |")
    streamed, final_grid, bare, decode = (statistics.median(times) for _, times, _ in diffusion["cases"])
    lines += [
        "",
        f"/diffuse: {diffusion['steps']} DPM-Solver++ steps (the pipeline's default), guidance "
        f"{diffusion['guidance']:g}, random classes. The streamed request takes **{streamed / bare:.2f}×** the "
        f"bare pipeline call and the final grid alone {final_grid / bare:.2f}×, in the same run. The difference "
        f"is its {diffusion['previews']} previews: each decodes the {DIFFUSE_IMAGES} x0 predictions with the VAE "
        f"({decode:.1f} ms; {diffusion['previews']} × that = {diffusion['previews'] * decode:.0f} ms of the "
        f"{streamed - final_grid:.0f} ms between the two), the grids and the GIF cost the rest.",
    ]
    lines += [
        "",
        f"| HTTP, {users} concurrent gradio_client users | requests | errors | median ms | p95 ms | max ms | target p95 ms | |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for kind, name, target in (
        (
            "mixed",
            f"mixed requests back to back ({per_user} per user: sample, interpolate, manifold, reconstruct, traverse)",
            1000,
        ),
        ("paced", "the same mix, each user pausing 0.5–1.5 s between requests", 1000),
        ("same", "everyone presses Sample (36 images) with the default seed at once", 1000),
        (
            "diffuse",
            f"everyone presses Diffuse ({DIFFUSE_IMAGES} images, {diffusion['steps']} steps, previews "
            f"streamed), {diffuse_per_user} per user back to back",
            None,
        ),
    ):
        times = http[kind]
        if times:
            p95 = percentile(times, 95)
            errors = http["errors"][kind]
            ok = not errors and (target is None or p95 < target)
            lines.append(
                f"| {name} | {len(times) + errors} | {errors} | {statistics.median(times):.0f} | "
                f"{p95:.0f} | {max(times):.0f} | {target or '–'} | {'✅' if ok else '❌'} |"
            )
    if any(http["endpoints"].values()):
        lines += [
            "",
            "Mixed requests back to back, per endpoint (median / p95 ms): "
            + ", ".join(
                f"`/{name}` {statistics.median(times):.0f} / {percentile(times, 95):.0f}"
                for name, times in http["endpoints"].items()
                if times
            )
            + ".",
        ]
    if http["previews"]:
        fewest, most = min(http["previews"]), max(http["previews"])
        lines += [
            "",
            f"Each /diffuse answer streamed {fewest if fewest == most else f'{fewest}–{most}'} previews before its "
            f"final grid and GIF, and took {http['cpu_ms']['diffuse_server']:.0f} ms of the server's CPU time "
            f"(both cores, PNG files and Gradio included). {users} users at once wait in the Space's single "
            "line of 2 workers: a request's latency is mostly the requests ahead of it.",
        ]
    if "cpu_ms" in http:
        lines += [
            "",
            f"CPU per mixed request: server {http['cpu_ms']['server']:.0f} ms, the {users} gradio_client users "
            f"{http['cpu_ms']['clients']:.0f} ms. Clients and server share the same {os.cpu_count()} cores here, "
            "so the clients' own work is part of every latency above; remote users would not add it.",
        ]
    lines += [
        "",
        "Latency over HTTP is the client's wall time per `predict` (queue, compute, PNG/GIF files, download). "
        "The clients share one TLS context made once: by default gradio_client rebuilds one (about 30 ms of "
        "CPU to load the CA bundle) for each of the three HTTP calls of a `predict`, which on these shared "
        "cores would be taken from the server; a remote user's machine pays that, not the Space.",
        END,
    ]
    return "\n".join(lines)


T2I_BEGIN, T2I_END = "<!-- bench_space_text_to_image -->", "<!-- /bench_space_text_to_image -->"
T2I_IMAGES = 4
PROMPT = "red heart, twemoji style"


def text_to_image_speed(folder: str, repeats: int, users: int, per_user: int) -> str:
    """Issue 26's targets for a text-to-image model, as a RESULTS.md section: in-process, the streamed
    /text_to_image of ``T2I_IMAGES`` images at the model's recommended setting (< 1.5 s) and /image_to_image at
    strength 0.6 (< 1 s), each beside the bare diffusers call in the same run; over HTTP, ``users`` gradio_client
    users × ``per_user`` /text_to_image requests at once (0 errors)."""
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
    from gradio_client import Client
    from space_helpers import load_app, running_space

    from vae_hub.explore.text_to_image import request_pipeline

    ex = Explorer([folder], {})
    model = local_id(ex)
    if problem := ex.warm(model):
        sys.exit(f"cannot use {folder}: {problem}")
    pipe = ex.entry(model).model
    d = ex.text_to_image_defaults(model)
    settings = (d["steps"], d["guidance"])
    example = PIL.Image.open(sorted((EXAMPLES / "emoji").glob("*.png"))[0])
    bare = request_pipeline(pipe, StableDiffusionPipeline, d["scheduler"])
    bare_i2i = request_pipeline(pipe, StableDiffusionImg2ImgPipeline, d["scheduler"])
    start = ex._pipeline_image(ex.entry(model), example).float() / 255

    @torch.inference_mode()
    def bare_call(i: int) -> None:
        bare(
            PROMPT,
            num_images_per_prompt=T2I_IMAGES,
            num_inference_steps=settings[0],
            guidance_scale=settings[1],
            generator=torch.Generator().manual_seed(i),
            output_type="pil",
        )

    @torch.inference_mode()
    def bare_i2i_call(i: int) -> None:
        bare_i2i(
            PROMPT,
            image=start,
            strength=0.6,
            num_inference_steps=settings[0],
            guidance_scale=settings[1],
            generator=torch.Generator().manual_seed(i),
            output_type="pil",
        )

    cases = [
        (
            f"`/text_to_image`, {T2I_IMAGES} images, streamed (previews, grid, GIF)",
            lambda i: list(ex.text_to_image(model, PROMPT, "", T2I_IMAGES, *settings, i, d["scheduler"])),
            1500.0,
        ),
        (f"the bare `StableDiffusionPipeline` call, {T2I_IMAGES} images (reference)", bare_call, None),
        (
            f"the same bare call at torch's default {explore.available_cores()} threads (a diffusers script's)",
            at_threads(explore.available_cores(), bare_call),
            None,
        ),
        (
            "`/image_to_image`, strength 0.6",
            lambda i: ex.image_to_image(model, example, PROMPT, "", 0.6, *settings, i, d["scheduler"]),
            1000.0,
        ),
        ("the bare `StableDiffusionImg2ImgPipeline` call (reference)", bare_i2i_call, None),
    ]
    times = timed_together([fn for _, fn, _ in cases], repeats)
    latencies, errors = [], 0
    with tempfile.TemporaryDirectory() as tmp, running_space([folder], Path(tmp) / "space.log") as space:
        served = served_ids([folder])[0]  # not ``model``: a shipped model of that name may be served too
        clients = [
            Client(space.url, verbose=False, analytics_enabled=False, download_files=f"{tmp}/{u}")
            for u in range(users)
        ]
        lock = threading.Lock()

        def user(u: int) -> None:
            nonlocal errors
            for k in range(per_user):
                began = time.perf_counter()
                try:
                    clients[u].predict(
                        served,
                        PROMPT,
                        "",
                        T2I_IMAGES,
                        *settings,
                        100 * u + k,
                        d["scheduler"],
                        api_name="/text_to_image",
                    )
                    with lock:
                        latencies.append((time.perf_counter() - began) * 1000)
                except Exception as err:  # counted: a benchmark reports failures instead of stopping
                    with lock:
                        errors += 1
                    print(f"error: {err}", file=sys.stderr)

        clients[0].predict(served, PROMPT, "", 1, 1, 1.0, 0, d["scheduler"], api_name="/text_to_image")  # warm
        with ThreadPoolExecutor(users) as pool:
            list(pool.map(user, range(users)))
        for client in clients:
            client.close()
    lines = [
        T2I_BEGIN,
        "## Space: text-to-image views (`benchmarks/bench_space.py --text_to_image`)",
        "",
        f"Model `{name_of(folder)}` at its recommended setting ({d['scheduler']}, {settings[0]} steps, guidance "
        f'{settings[1]:g}), prompt "{PROMPT}"; {platform.processor() or platform.machine()}, '
        f"{os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} thread(s) per request as the "
        f"Space sets them (`explore.share_cores`); medians of {repeats} interleaved calls.",
        "",
        "| in-process | median ms | p95 ms | target |",
        "|---|---:|---:|---:|",
    ]
    for (name, _, target), ms in zip(cases, times):
        lines.append(
            f"| {name} | {statistics.median(ms):.0f} | {percentile(ms, 95):.0f} | "
            f"{f'< {target:.0f}' if target else ''} |"
        )
    lines += [
        "",
        f"Over HTTP: {users} gradio_client users × {per_user} `/text_to_image` requests at once: "
        f"**{errors} errors**, {len(latencies)} answered, p95 {percentile(latencies, 95):.0f} ms "
        f"(the Space's line runs {load_app().MODEL['concurrency_limit']} at a time on {explore.available_cores()} "
        f"cores, {torch.get_num_threads()} thread(s) each).",
        "",
        f"Command: `python benchmarks/bench_space.py --text_to_image {name_of(folder)} --repeats {repeats}`.",
        T2I_END,
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace this benchmark's section of ``path`` (between the markers), or append it; keep everything else."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--model", default=str(SHIPPED), help="VAEModel folder or Hub id (default: the shipped model)")
    parser.add_argument(
        "--pipeline",
        default=str(SHIPPED_PIPELINE),
        help="LatentDiffusionPipeline folder or Hub id for /diffuse (default: the shipped pipeline)",
    )
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per in-process endpoint")
    parser.add_argument("--users", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument("--requests_per_user", type=int, default=10)
    parser.add_argument("--diffuse_per_user", type=int, default=2, help="/diffuse requests per HTTP client")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"))
    parser.add_argument("--skip_http", action="store_true", help="only the in-process timings")
    parser.add_argument("--hostile", action="store_true", help="only the server's memory across a hostile burst")
    parser.add_argument(
        "--text_to_image",
        default=None,
        metavar="FOLDER",
        help="only: a StableDiffusionPipeline folder's views (in-process and 16 HTTP users)",
    )
    args = parser.parse_args(argv)
    share_cores_as_the_space()
    if args.text_to_image:
        section = text_to_image_speed(args.text_to_image, args.repeats, args.users, 2)
        print(section)
        write_section(Path(args.results), section, T2I_BEGIN, T2I_END)
        return
    for given, shipped in ((args.model, SHIPPED), (args.pipeline, SHIPPED_PIPELINE)):
        if given == str(shipped) and not shipped.is_dir():
            sys.exit(f"{shipped} does not exist yet: train it, or pass --model/--pipeline FOLDER")
    if args.hostile:
        with tempfile.TemporaryDirectory() as tmp:
            result = hostile_burst(args.model, Path(tmp) / "space.log")
        print(result)
        write_section(Path(args.results), hostile_table(result), HOSTILE_BEGIN, HOSTILE_END)
        return
    local = in_process(args.model, args.repeats)
    diffusion = in_process_diffusion(args.pipeline, args.repeats)
    for name, times, target in local + diffusion["cases"]:
        print(
            f"{name}: median {statistics.median(times):.1f} ms, p95 {percentile(times, 95):.1f} ms (target {target})"
        )
    http = no_results()
    if not args.skip_http:
        with tempfile.TemporaryDirectory() as tmp:
            http = over_http(
                args.model,
                args.pipeline,
                (diffusion["steps"], diffusion["guidance"]),
                args.users,
                args.requests_per_user,
                args.diffuse_per_user,
                Path(tmp) / "space.log",
            )
        for kind in SCENARIOS:
            if http[kind]:
                print(f"HTTP {kind}: {len(http[kind])} ok, p95 {percentile(http[kind], 95):.0f} ms")
        print(f"HTTP errors: {http['errors']}; CPU ms per mixed request: {http.get('cpu_ms')}")
    write_section(
        Path(args.results),
        table(
            args.model,
            args.pipeline,
            local,
            diffusion,
            http,
            args.users,
            args.requests_per_user,
            args.diffuse_per_user,
        ),
    )
    print(f"wrote the bench_space section of {args.results}")


if __name__ == "__main__":
    main()
