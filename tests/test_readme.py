"""The README's example of the package runs as written, and prints what it says it prints."""
from __future__ import annotations

import re
import subprocess
import sys

from sparsenb.cache import PROJECT_ROOT


def _example() -> str:
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("## The package in a few lines", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs(tmp_path, mnist_root):
    code = _example()
    assert "audit.worst_case" in code and "attacks.pgd" in code and "defended(" in code
    env = {"SPARSENB_DATA": str(mnist_root), "SPARSENB_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert rows[0][1] == "clean" and " ".join(rows[-1][1:5]) == "worst case, all attacks"
    accuracies = {" ".join(r[1:-3]): float(r[-3]) for r in rows}
    assert accuracies["clean"] >= 80  # a trained network, as the example says
    assert accuracies["worst case, all attacks"] <= min(accuracies.values())  # the worst case over every attack
    assert list((tmp_path / "cache" / "checkpoints").glob("cnn-*.pt"))  # trained once, stored
