"""A Lambda-like sandbox for `make bench` (issue 15): a function's release bootstrap, or the Python
baseline (bench/baselines/python), in a container with the CPU share and memory of a Lambda
`MemorySize` (vCPU = MemorySize / 1769 MB: `--cpus`, `--memory`), under the Runtime Interface
Emulator of the local base image (`scripts/local-image.sh`), talking to the emulated AWS the way a
function talks to AWS: over TLS, one hostname per service (`AWS_ENDPOINT_URL_<SERVICE>`), so each
service pays its own handshake. A front on the Docker bridge terminates TLS and hands each call to
moto (`AWS_ENDPOINT_URL`, wherever it runs). Its certificate authority is made for the run and
trusted through `SSL_CERT_FILE`, which the SDK's rustls stack reads (rustls-native-certs), and
`AWS_CA_BUNDLE` for botocore; the leaf is RSA 2048, as AWS's endpoints' are.

For each size: cold starts (a fresh container each, its first invoke remediating a fresh stopped
Auto Scaling member: INIT included), then warm remediations in one container, each about a fresh
member. Time to remediate is from posting the event to the front answering the remediation call
(`SetInstanceHealth`); peak memory is the measured process's VmHWM, read from the host.

    scripts/with-moto.sh .venv/bin/python bench/sandbox.py --bootstrap PATH [--sizes 128,256,512,1024]
        [--cold 5] [--warm 20] [--plain] [--no-python] [--json target/bench/sandbox.json]

`--plain` measures over plain HTTP as well (one endpoint for all services), for comparison."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "harness"))
sys.path.insert(0, str(ROOT / "bench"))

from tls_front import Front, make_certificates  # noqa: E402 (the harness is on the path above)

MB_PER_VCPU = 1769
SIZES = (128, 256, 512, 1024)
DOMAIN = "us-east-1.amazonaws.medic.test"
HOME_ACCOUNT = "123456789012"  # moto's default account: medic's own in central mode
PAUSE_SECONDS = 0.5  # before each central-mode remediation: several of the CFS quota's 100 ms periods
# The SDK's service ids as `AWS_ENDPOINT_URL_<SERVICE>` spells them, and each one's hostname.
SERVICES = {
    "instance-healer": {"AUTO_SCALING": "autoscaling", "EC2": "ec2", "DYNAMODB": "dynamodb", "SNS": "sns"},
}


def arch() -> str:
    return {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]


def image() -> str:
    return f"public.ecr.aws/lambda/provided:al2023-rapid-{arch()}"


def bridge_address() -> str:
    """The Docker bridge's address on this host, which containers reach as host-gateway."""
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True).stdout
    match = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", shown)
    if not match:
        raise SystemExit("sandbox: no docker0 bridge address (is Docker running?)")
    return match.group(1)


# --- the sandbox --------------------------------------------------------------------------------


class Runner:
    """What a sandbox runs: the runtime's command, the host paths it mounts (host, container), and
    its environment; `process` starts the command line of the process measured for memory."""

    def __init__(self, name: str, command: list[str], mounts: list[tuple[Path, str]], env: dict[str, str]):
        self.name, self.command, self.mounts, self.env = name, command, mounts, env
        self.process = command[0]

    @staticmethod
    def medic(bootstrap: Path) -> "Runner":
        return Runner("medic", ["/var/task/bootstrap"], [(bootstrap, "/var/task/bootstrap")], {})

    @staticmethod
    def python() -> "Runner":
        """The Python baseline (bench/baselines/python) on this host's CPython, its packages
        installed for it into target/bench/python-baseline, the shared libraries it loads beside
        them, under awslambdaric as Lambda's Python runtime runs a handler."""
        home = Path(sys.base_prefix)
        folder = ROOT / "target" / "bench" / "python-baseline"
        packages, libs = folder / "packages", folder / "libs"
        requirements = ROOT / "bench" / "baselines" / "python" / "requirements.txt"
        stamp = folder / "requirements.txt"
        if not stamp.exists() or stamp.read_text() != requirements.read_text():
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                            "--target", str(packages), "--upgrade", "-r", str(requirements)], check=True)
            stamp.write_text(requirements.read_text())
        (packages / "handler.py").write_bytes((ROOT / "bench" / "baselines" / "python" / "handler.py").read_bytes())
        libs.mkdir(parents=True, exist_ok=True)
        python = home / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
        objects = [python, *home.glob("lib/python3*/lib-dynload/*.so"), *packages.rglob("*.so")]
        for line in subprocess.run(["ldd", *map(str, objects)], capture_output=True, text=True).stdout.splitlines():
            match = re.search(r"=> (/\S+) ", line)
            if match and not (libs / Path(match.group(1)).name).exists():
                subprocess.run(["cp", "-L", match.group(1), str(libs)], check=True)
        env = {"PYTHONPATH": "/var/task", "LD_LIBRARY_PATH": "/opt/python-libs", "PYTHONDONTWRITEBYTECODE": "1"}
        return Runner("python", [str(python), "-m", "awslambdaric", "handler.handler"],
                      [(home, str(home)), (libs, "/opt/python-libs"), (packages, "/var/task")], env)


class Sandbox:
    """One container: `runner` under the emulator, with `memory` MB and memory / 1769 vCPU."""

    def __init__(self, runner: Runner, memory: int, env: dict[str, str], hosts: list[str], ca: Path | None):
        self.name, self.runner = f"medic-sandbox-{uuid.uuid4().hex[:10]}", runner
        command = ["docker", "run", "-d", "--rm", "--name", self.name,
                   f"--cpus={memory / MB_PER_VCPU:.3f}", f"--memory={memory}m", f"--memory-swap={memory}m",
                   "-p", "127.0.0.1::8080", "--entrypoint", "/var/rapid/aws-lambda-rie"]
        for host_path, path in runner.mounts:
            command += ["-v", f"{Path(host_path).resolve()}:{path}:ro"]
        for host in hosts:
            command += ["--add-host", f"{host}:host-gateway"]
        if ca is not None:
            command += ["-v", f"{ca.resolve()}:/etc/medic-bench-ca.pem:ro"]
            # rustls-native-certs reads SSL_CERT_FILE; botocore reads AWS_CA_BUNDLE.
            env = {**env, "SSL_CERT_FILE": "/etc/medic-bench-ca.pem", "AWS_CA_BUNDLE": "/etc/medic-bench-ca.pem"}
        env = {**env, **runner.env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory)}
        for key, value in env.items():
            command += ["-e", f"{key}={value}"]
        command += [image(), *runner.command]
        subprocess.run(command, check=True, capture_output=True, text=True)
        mapped = subprocess.run(["docker", "port", self.name, "8080/tcp"], check=True, capture_output=True,
                                text=True).stdout.split()[0]
        self.port = int(mapped.rsplit(":", 1)[1])
        # Docker's port proxy accepts connections before the emulator listens: ready is when an
        # HTTP answer, any answer, comes back.
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1).close()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"{self.name}: the emulator did not start:\n{self.log()}")
                time.sleep(0.05)

    def invoke(self, event: dict) -> object:
        from medic_bench import invoke_emulator

        # A cold start at 0.07 vCPU takes seconds (the Python baseline's INIT above all).
        return invoke_emulator(self.port, event, timeout=120)

    def log(self) -> str:
        return subprocess.run(["docker", "logs", self.name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True).stdout

    def peak_rss_kib(self) -> int:
        """The bootstrap's VmHWM, from the host's /proc (the container's processes by host pid)."""
        top = subprocess.run(["docker", "top", self.name, "-o", "pid,args"], check=True, capture_output=True,
                             text=True).stdout.splitlines()[1:]
        for line in top:
            pid, args = line.strip().split(None, 1)
            if args.startswith(self.runner.process):
                status = Path(f"/proc/{pid}/status").read_text()
                return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1))
        raise RuntimeError(f"{self.name}: no bootstrap process:\n{top}")

    def close(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def init_ms(log: str) -> float | None:
    match = re.search(r"INIT REPORT\(durationMs: ([\d.]+)\)", log)
    return float(match.group(1)) if match else None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict:
    if not values:
        return {}
    return {"n": len(values), "p50": statistics.median(values), "p99": percentile(values, 99),
            "min": min(values), "max": max(values)}


class Transport:
    """The front between sandboxes and moto for `services` (`AWS_ENDPOINT_URL_<SERVICE>` key →
    hostname): over TLS one hostname per service with a CA made for it, else one plain endpoint;
    `env` points a sandbox at it."""

    def __init__(self, services: dict[str, str], tls: bool):
        self.tls = tls
        self.hostnames = [f"{name}.{DOMAIN}" for name in services.values()]
        folder = Path(tempfile.mkdtemp(prefix="medic-sandbox-"))
        self.ca = make_certificates(folder, self.hostnames) if tls else None
        self.front = Front(bridge_address(), os.environ["AWS_ENDPOINT_URL"], folder if tls else None)
        if tls:
            endpoints = {f"AWS_ENDPOINT_URL_{key}": f"https://{name}.{DOMAIN}:{self.front.port}" for key, name in services.items()}
        else:
            endpoints = {"AWS_ENDPOINT_URL": f"http://medic-moto.{DOMAIN}:{self.front.port}"}
            self.hostnames = [f"medic-moto.{DOMAIN}"]
        self.env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                    **endpoints}

    def sandbox(self, runner: Runner, memory: int, env: dict[str, str]) -> Sandbox:
        return Sandbox(runner, memory, {**self.env, **env}, self.hostnames, self.ca)

    def remediate(self, sandbox: Sandbox, function: str, event: dict, what: str) -> tuple[float, float]:
        """Invokes `sandbox` with `event`: (invoke latency, time to remediate) in ms, the latter
        from posting the event to the front answering the remediation call."""
        from run import MUTATING

        posted = time.time()
        started = time.perf_counter()
        response = sandbox.invoke(event)
        latency = (time.perf_counter() - started) * 1000
        status = response.get("status") if isinstance(response, dict) else None
        if status != "acted":
            raise SystemExit(f"{what}: expected acted, got {json.dumps(response)[:600]}\n{sandbox.log()[-3000:]}")
        remediation = MUTATING[function][0]
        calls = [a for a in self.front.since(posted) if a[2] == remediation and 200 <= a[3] < 300]
        if not calls:
            raise SystemExit(f"{what}: no {remediation} reached the emulated AWS")
        return latency, (calls[0][0] - posted) * 1000

    def close(self) -> None:
        self.front.close()


def measure(function: str, runner: Runner, sizes: list[int], cold: int, warm: int, tls: bool) -> dict:
    from medic_bench import World
    from run import Scenario

    transport = Transport(SERVICES[function], tls)
    results: dict = {"function": function, "runner": runner.name, "tls": tls, "sizes": {}}
    try:
        for memory in sizes:
            world = World(f"sb{runner.name[0]}{memory}{'t' if tls else 'p'}")
            env = world.env(breaker_max_actions="1000")
            figures: dict = {"vcpu": round(memory / MB_PER_VCPU, 3), "cold_ms": [], "cold_ttr_ms": [], "init_ms": [],
                             "cold_rss_kib": [], "warm_ms": [], "warm_ttr_ms": []}
            scenario = Scenario(function, world)

            def remediate(sandbox: Sandbox) -> tuple[float, float]:
                return transport.remediate(sandbox, function, scenario.fresh(), f"{runner.name} {function} at {memory} MB")

            for n in range(cold):
                with transport.sandbox(runner, memory, env) as sandbox:
                    latency, ttr = remediate(sandbox)
                    figures["cold_ms"].append(latency)
                    figures["cold_ttr_ms"].append(ttr)
                    figures["cold_rss_kib"].append(sandbox.peak_rss_kib())
                    if (init := init_ms(sandbox.log())) is not None:
                        figures["init_ms"].append(init)
                print(f"sandbox {runner.name} {function} {memory} MB {'TLS' if tls else 'plain'}: cold {n + 1}/{cold}: "
                      f"{latency:.0f} ms, remediation at {ttr:.0f} ms", file=sys.stderr, flush=True)
            with transport.sandbox(runner, memory, env) as sandbox:
                remediate(sandbox)
                for _ in range(warm):
                    latency, ttr = remediate(sandbox)
                    figures["warm_ms"].append(latency)
                    figures["warm_ttr_ms"].append(ttr)
                figures["warm_rss_kib"] = sandbox.peak_rss_kib()
            results["sizes"][str(memory)] = figures
    finally:
        transport.close()
    return results


def measure_new_accounts(function: str, runner: Runner, memory: int, cold: int, accounts: int) -> dict:
    """Central mode over TLS, STS included, at `memory`: what a member account adds.

    Cold: fresh containers whose first event comes from a member account (AssumeRole, the
    account's clients) against fresh ones whose first event comes from medic's own account.
    Warm: in one container, for each of `accounts` member accounts new to it, a first remediation
    and a second in the same account (its role and clients cached); the container remediated in
    another member account first, so its STS connection is open. Every remediation follows the
    same pause, so each starts with the container's CPU quota in the same state."""
    from medic_bench import World, from_account
    from run import Scenario

    transport = Transport({**SERVICES[function], "STS": "sts"}, tls=True)
    home = World(f"sbo{memory}")
    env = home.env(breaker_max_actions="1000", mode="central", home_account=HOME_ACCOUNT)
    figures: dict = {"memory": memory, "cold_home_ttr_ms": [], "cold_member_ttr_ms": [], "first_ttr_ms": [],
                     "second_ttr_ms": []}
    what = f"{runner.name} {function} central at {memory} MB"

    def member_scenario() -> tuple[str, "Scenario"]:
        account = f"{uuid.uuid4().int % 10**11 + 5 * 10**11}"
        return account, Scenario(function, World(f"sbo{memory}", member=account))

    def remediate(sandbox: Sandbox, event: dict) -> float:
        time.sleep(PAUSE_SECONDS)
        return transport.remediate(sandbox, function, event, what)[1]

    own = Scenario(function, home)
    try:
        for _ in range(cold):
            account, scenario = member_scenario()
            events = {"cold_home_ttr_ms": own.fresh(),
                      "cold_member_ttr_ms": from_account(scenario.fresh(), account)}
            for key, event in events.items():
                with transport.sandbox(runner, memory, env) as sandbox:
                    figures[key].append(remediate(sandbox, event))
        with transport.sandbox(runner, memory, env) as sandbox:
            for n in range(accounts + 1):
                account, scenario = member_scenario()
                first, second = (remediate(sandbox, from_account(scenario.fresh(), account)) for _ in range(2))
                if n:  # the first account opens the container's STS connection
                    figures["first_ttr_ms"].append(first)
                    figures["second_ttr_ms"].append(second)
            figures["rss_kib"] = sandbox.peak_rss_kib()
        print(f"sandbox {what}: {cold} cold starts of each kind, {accounts} new accounts", file=sys.stderr, flush=True)
    finally:
        transport.close()
    return figures


def table(results: list[dict]) -> str:
    """One row per runner, size and transport; medic's rows have "× Python" against the Python
    baseline's row of the same size and transport."""
    python = {(r["tls"], m): f for r in results if r["runner"] == "python" for m, f in r["sizes"].items()}

    def p50(figures: dict, key: str) -> float:
        return summary(figures[key]).get("p50", 0.0)

    def versus(value: float, tls: bool, memory: str, key: str) -> str:
        baseline = python.get((tls, memory))
        return f" ({value / p50(baseline, key):.2f}× Python)" if baseline and p50(baseline, key) else ""

    lines = ["| runner | MemorySize (vCPU) | transport | cold: remediation p50 / p99 | INIT p50 | warm: remediation p50 | warm: invoke p50 | peak RSS |",
             "|---|---|---|---|---|---|---|---|"]
    for result in results:
        tls = result["tls"]
        for memory, f in result["sizes"].items():
            ttr, wttr = summary(f["cold_ttr_ms"]), summary(f["warm_ttr_ms"])
            mine = result["runner"] != "python"
            cold_vs = versus(ttr.get("p50", 0), tls, memory, "cold_ttr_ms") if mine else ""
            warm_vs = versus(wttr.get("p50", 0), tls, memory, "warm_ttr_ms") if mine else ""
            rss = max(f["cold_rss_kib"] + [f.get("warm_rss_kib", 0)]) / 1024
            lines.append(
                f"| {result['runner']} | {memory} MB ({f['vcpu']}) | {'TLS, one hostname per service' if tls else 'plain HTTP'}"
                f" | {ttr.get('p50', 0):.0f} / {ttr.get('p99', 0):.0f} ms{cold_vs} | {p50(f, 'init_ms'):.0f} ms"
                f" | {wttr.get('p50', 0):.0f} ms{warm_vs} | {p50(f, 'warm_ms'):.0f} ms | {rss:.1f} MB |")
    return "\n".join(lines)


# Lambda's published prices (us-east-1, arm64, which template.yaml deploys): per GB-second of
# billed duration (INIT included for a custom runtime), and per request.
PRICE_GB_SECOND = 0.0000133334
PRICE_REQUEST = 0.20 / 1_000_000
COLD_TTR_P99_TARGET_MS = 300


def cost_per_million(memory: int, billed_ms: float) -> float:
    return 1_000_000 * (memory / 1024 * billed_ms / 1000 * PRICE_GB_SECOND + PRICE_REQUEST)


def choice(results: list[dict]) -> tuple[int | None, str]:
    """The smallest MemorySize at which medic's cold remediation over TLS meets the p99 target, and
    a table of what each size costs against how fast it remediates."""
    medic = next((r for r in results if r["runner"] == "medic" and r["tls"]), None)
    if medic is None:
        return None, ""
    lines = ["| MemorySize | cold remediation p99 | warm remediation p50 | cost per million cold invokes | per million warm |",
             "|---|---|---|---|---|"]
    chosen = None
    for memory, f in sorted(medic["sizes"].items(), key=lambda item: int(item[0])):
        p99 = summary(f["cold_ttr_ms"]).get("p99", 0.0)
        cold_cost = cost_per_million(int(memory), summary(f["cold_ms"]).get("p50", 0.0))
        warm_cost = cost_per_million(int(memory), summary(f["warm_ms"]).get("p50", 0.0))
        if chosen is None and p99 <= COLD_TTR_P99_TARGET_MS:
            chosen = int(memory)
        lines.append(f"| {memory} MB | {p99:.0f} ms | {summary(f['warm_ttr_ms']).get('p50', 0.0):.0f} ms"
                     f" | ${cold_cost:.2f} | ${warm_cost:.2f} |")
    return chosen, "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--function", default="instance-healer", choices=sorted(SERVICES))
    parser.add_argument("--bootstrap", type=Path, required=True, help="a release bootstrap of --function")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--no-python", action="store_true", help="leave out the Python baseline")
    parser.add_argument("--plain", action="store_true", help="plain HTTP as well as TLS")
    parser.add_argument("--json", type=Path, default=ROOT / "target" / "bench" / "sandbox.json")
    args = parser.parse_args()
    subprocess.run([str(ROOT / "scripts" / "local-image.sh")], check=True, stdout=subprocess.DEVNULL)
    sizes = [int(s) for s in args.sizes.split(",")]
    runners = [Runner.medic(args.bootstrap)] + ([] if args.no_python else [Runner.python()])
    transports = [True, False] if args.plain else [True]
    results = [measure(args.function, runner, sizes, args.cold, args.warm, tls)
               for tls in transports for runner in runners]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(table(results))
    chosen, costs = choice(results)
    print()
    print(costs)
    print(f"smallest MemorySize with a cold remediation p99 <= {COLD_TTR_P99_TARGET_MS} ms: {chosen}")


if __name__ == "__main__":
    main()
