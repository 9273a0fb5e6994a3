"""requirements-lock.txt and constraints.txt stay in step with the ranges in pyproject.toml."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[3]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)(?: ; ([^\\]+?))? *\\?$")


def pins(path: Path) -> dict[str, str]:
    """Package -> version of the pins in a requirements file that apply to this Python."""
    out = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match and (match[3] is None or Marker(match[3]).evaluate()):
            out[canonicalize_name(match[1])] = match[2]
    return out


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in
            [*project["dependencies"], *extras["dev"], *extras["postgres"], *extras["export"]]]


def test_the_lock_pins_every_declared_package_within_its_range():
    lock = pins(ROOT / "requirements-lock.txt")
    requirements = [r for r in declared() if r.name != "torch"]
    assert len(requirements) > 20
    locked = {r: lock.get(canonicalize_name(r.name)) for r in requirements}
    outside = [f"{r}: locked {v}" for r, v in locked.items() if v is None or v not in r.specifier]
    assert outside == [], "run `make upgrade-deps`"
    assert "psycopg-binary" in lock  # the [binary] extra of psycopg


def test_torch_is_the_cpu_wheel_pinned_apart_and_nothing_cuda_is_locked():
    torch = next(r for r in declared() if r.name == "torch")
    assert pins(ROOT / "constraints.txt") == {"torch": "2.13.0+cpu"}
    assert "2.13.0+cpu" in torch.specifier
    lock = pins(ROOT / "requirements-lock.txt")
    cuda = [name for name in lock if name in {"torch", "triton"} or name.startswith(("nvidia", "cuda"))]
    assert cuda == []
    assert {"filelock", "sympy", "networkx", "jinja2", "fsspec", "setuptools"} <= set(lock)
