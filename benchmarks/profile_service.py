"""Where the time goes: py-spy over the service's whole process tree while it judges the test set as one /batch.

    .venv/bin/python benchmarks/profile_service.py --testset data/pandalm/testset-v1.json
    .venv/bin/python benchmarks/profile_service.py --testset ... --replay pandalm-7b-testset-v1.json

By default the service runs vLLM in process on the demo judge's weights without its output constraint, with
the settings of benchmarks/alternatives.py (32 new tokens, end of sequence ignored, one core for the engine).
With --replay it runs the remote engine in front of the replay server (PandaLM-7B's recorded outputs,
answered at once), which leaves only the service's own work. After a warm-up /batch, py-spy samples every
process (the service, vLLM's engine core and worker) during --rounds more; it writes a flame graph (SVG)
and the raw stacks to --out, and prints, per process, its share of the samples, the packages and the
functions that spent them (innermost frame). `--summarise RAW` prints that again from a saved profile.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from _service import benchmark_parser, client_session, load_pairs, replay_server

from pandalm_serve.tools.processes import ServerProcess, free_port, service_command


async def judge(url: str, pairs: list[dict[str, str]]) -> float:
    async with client_session() as session:
        started = time.perf_counter()
        async with session.post(f"{url}/batch", json={"items": pairs}) as response:
            results = (await response.json())["results"]
        elapsed = time.perf_counter() - started
    assert all(r["status"] != "error" for r in results), [r["error"] for r in results if r["error"]][:2]
    return elapsed


def summarise(raw: Path, top: int) -> str:
    """Per process: its share of all samples, and the functions (innermost frame) that spent most of them."""
    per_process: Counter[str] = Counter()
    functions: defaultdict[str, Counter[str]] = defaultdict(Counter)
    packages: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for line in raw.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        frames = stack.split(";")
        # py-spy starts each stack with its process ('process PID:"command"'), subprocesses nested in it.
        at = max(i for i, frame in enumerate(frames) if frame.startswith("process "))
        process = re.sub(r'^process \d+:"?|"$', "", frames[at])
        process = "service (API process)" if "pandalm_serve.cli" in process else process
        per_process[process] += int(count)
        leaf = frames[-1] if at < len(frames) - 1 else "(native)"
        functions[process][leaf] += int(count)
        # The package (or standard-library module) the innermost frame's file is in.
        where = re.search(r"\(([^/:)]+)[/:]", leaf)
        packages[process][where.group(1) if where else leaf] += int(count)
    total = sum(per_process.values())
    lines = []
    for process, samples in per_process.most_common():
        lines.append(f"{samples / total:6.1%}  {process}")
        by_package = packages[process].most_common(6)
        lines.append("          by package: " + ", ".join(f"{name} {n / samples:.0%}" for name, n in by_package))
        for function, n in functions[process].most_common(top):
            lines.append(f"          {n / samples:6.1%}  {function}")
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.set_defaults(pairs=999, rounds=2)
    parser.add_argument("--replay", type=Path, help="PandaLM-7B's recorded outputs: profile the remote engine")
    parser.add_argument("--model", type=Path, help="a model folder (default: the demo judge without its constraint)")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "pandalm-serve")
    parser.add_argument("--rate", type=int, default=50, help="samples per second")
    parser.add_argument("--top", type=int, default=8, help="functions shown per process")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="pandalm-profile-")))
    parser.add_argument("--summarise", type=Path, metavar="RAW", help="only summarise this saved profile.raw")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.summarise, args.top))
        return
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy is not installed: pip install py-spy (it is in the dev extra)")
    from alternatives import plain_model  # the same model as the side-by-side benchmark

    pairs = load_pairs(args.testset, args.pairs)
    args.out.mkdir(parents=True, exist_ok=True)
    common = ["--log-level", "warning", "--cache-backend", "off", "--max-batch-items", "5000"]
    processes: list[ServerProcess] = []
    try:
        if args.replay:
            if args.testset is None:
                sys.exit("--replay needs --testset: the replay server finds its outputs by the test set's prompts")
            replay_url, replay = replay_server(args.testset, args.replay, args.out / "replay.log")
            processes.append(replay)
            replay.wait_until_ok(f"{replay_url}/v1/models", 60)
            # As benchmarks/remote_overhead.py: text prompts (the replay server keys by text), 64 in flight.
            serve = [*common, "--engine", "remote", "--remote-url", replay_url,
                     "--remote-prompt-format", "text", "--max-items-in-flight", "64"]  # fmt: skip
        else:
            model = plain_model(args.model, args.cache_dir)
            serve = [*common, "--model", str(model), "--max-new-tokens", "32", "--ignore-eos",
                     "--max-items-in-flight", "5000"]  # fmt: skip
        port = free_port()
        service = ServerProcess(
            service_command(port, *serve), args.out / "service.log", {"VLLM_CPU_OMP_THREADS_BIND": "0"}
        )
        processes.append(service)
        url = f"http://127.0.0.1:{port}"
        service.wait_until_ok(f"{url}/readyz")
        asyncio.run(judge(url, pairs))
        raw = args.out / "profile.raw"
        command = [spy, "record", "--pid", str(service.proc.pid), "--subprocesses", "--nonblocking",
                   "--rate", str(args.rate)]  # fmt: skip
        recorders = [
            subprocess.Popen([*command, "--format", "raw", "-o", str(raw)]),
            subprocess.Popen([*command, "--format", "flamegraph", "-o", str(args.out / "profile.svg")]),
        ]
        time.sleep(2)
        for _ in range(args.rounds):
            seconds = asyncio.run(judge(url, pairs))
            print(f"{len(pairs) / seconds:.1f} pairs/s while profiled ({len(pairs)} pairs, {seconds:.1f} s)")
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(60)
    finally:
        for process in reversed(processes):
            process.stop()
    print(summarise(raw, args.top))
    print(f"flame graph: {args.out / 'profile.svg'}")


if __name__ == "__main__":
    main()
