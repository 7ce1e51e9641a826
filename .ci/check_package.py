"""CI: the validation package's findings are exactly the open P0 gaps .ci/open-p0.txt lists.

Any other finding (a failed test, an unknown requirement ID, an IQ mismatch, a stale reference in
docs/compliance-matrix.md) fails the run, and so does a gap that closed but is still listed.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path


def main(archive: str, listed_file: str) -> int:
    with zipfile.ZipFile(archive) as z:
        content = json.loads(z.read("package.json"))
    listed = {
        line.split()[0]
        for line in Path(listed_file).read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    gaps = {g["id"] for g in content["trace"]["summary"]["gaps"]}
    problems = [f for f in content["verdict"]["findings"] if not f.startswith("P0 requirement ")]
    problems += [f"a new P0 gap: {rid}" for rid in sorted(gaps - listed)]
    problems += [f"{rid} is shown now: remove it from {listed_file}" for rid in sorted(listed - gaps)]
    summary = content["trace"]["summary"]
    print(f"{archive}: P0 shown {summary['p0_shown']} of {summary['p0']}, {summary['tests']} tests")
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
