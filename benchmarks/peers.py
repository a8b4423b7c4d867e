"""What the encoder benchmarks share (stdlib only: the workers import it inside the peers'
throwaway venvs too): the torch pin, Enformer's default size, the current RSS of a worker and
the creation of a peer's venv (torch pinned first, then the peer, which must not change it).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

TORCH_PIN = "torch==2.13.0"
ENFORMER_DEFAULT = dict(dim=1536, depth=11, heads=8)


def rss_now_kb() -> int:
    """This process's resident set size now (kB, from /proc; 0 where there is none)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def last_lines(text: str, n: int = 6) -> str:
    """The last ``n`` non-empty lines of ``text`` (pip's index warnings dropped), one line."""
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()
             and not ln.startswith("WARNING: Location")]
    return " | ".join(lines[-n:])[-1500:]


def _check(python: Path, module: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-c", f"import {module}, torch; print(torch.__version__)"],
                          capture_output=True, text=True)


def ensure_peer_venv(venv: Path, package: str, module: str) -> tuple[Path | None, str]:
    """The python of ``venv`` with ``package`` importable as ``module`` (created on first use:
    :data:`TORCH_PIN` first, then the package), or ``(None, why)`` when it cannot be installed,
    imported, or it changed torch."""
    python = venv / "bin" / "python"
    if python.exists() and _check(python, module).returncode == 0:
        return python, ""
    print(f"creating {venv} ({TORCH_PIN} first, then {package})", flush=True)
    steps = [["python3", "-m", "venv", str(venv)],
             [str(python), "-m", "pip", "install", "-q", TORCH_PIN],
             [str(python), "-m", "pip", "install", "-q", package]]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            return None, f"`{' '.join(cmd[-3:])}` failed: {last_lines(proc.stderr)}"
    check = _check(python, module)
    if check.returncode != 0:
        return None, f"import {module} failed: {last_lines(check.stderr)}"
    version = check.stdout.strip()
    if not version.startswith(TORCH_PIN.split("==")[1]):
        return None, f"{package} changed torch to {version}; reinstall it with --no-deps"
    return python, ""
