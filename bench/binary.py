"""The `bronze` binary a benchmark measures, shared by the bench scripts."""

import json
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bronze_binary():
    """BRONZE_BIN (another build, for a before/after table), else this checkout's
    release build, wherever cargo puts it (CARGO_TARGET_DIR included)."""
    if os.environ.get("BRONZE_BIN"):
        return os.environ["BRONZE_BIN"]
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO, capture_output=True, check=True).stdout)
    return os.path.join(meta["target_directory"], "release", "bronze")
