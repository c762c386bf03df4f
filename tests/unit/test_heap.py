"""monitor.heap.limit_heap_fragmentation against glibc's own behaviour, each case in a
fresh interpreter (malloc settings are per process and cannot be undone)."""

from __future__ import annotations

import os
import subprocess
import sys

# No skip: calmon's image and CI run on glibc, where the setting must take
# effect; on another C library these tests fail rather than pass silently.

# Free a 1 MiB block (mapped), then ask for 512 KiB: does the new block come from a
# fresh mapping (mallinfo2().hblks counts them) or from the heap?
PROBE = """
import ctypes, sys
from monitor.heap import limit_heap_fragmentation

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    print("changed", limit_heap_fragmentation())
libc.free(libc.malloc(1024 * 1024))
before = libc.mallinfo2().hblks
block = libc.malloc(512 * 1024)
print("mapped", libc.mallinfo2().hblks - before)
libc.free(block)
"""


def _probe(mode: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env={**environment, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_glibc_default_serves_a_large_block_from_the_heap_after_a_larger_one_is_freed() -> None:
    # The behaviour the setting exists for: freeing the 1 MiB block raised the threshold.
    assert "mapped 0" in _probe("default")


def test_after_tuning_a_large_block_is_mapped_and_so_returned_when_freed() -> None:
    output = _probe("tuned")
    assert "changed True" in output
    assert "mapped 1" in output


def test_settings_from_the_environment_are_kept() -> None:
    # The operator's own MALLOC_* settings win: nothing is changed.
    output = _probe("tuned", MALLOC_MMAP_THRESHOLD_="4194304", MALLOC_ARENA_MAX="4")
    assert "changed False" in output
    assert "mapped 0" in output  # 512 KiB is under the operator's 4 MiB threshold
