"""A stand-in for ``prefect.engine`` in the fork server's tests: reports what the run sees."""

import json
import os
import signal
import sys
import time

if __name__ == "__main__":
    what = sys.argv[1]
    if what == "report":
        print(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(),
                          "probe": os.environ.get("FORKPROBE"), "argv": sys.argv[1:],
                          "preloaded": "tests.infra.forkpreload" in sys.modules,
                          "marker": sys.modules["tests.infra.forkpreload"].MARKER
                          if "tests.infra.forkpreload" in sys.modules else None}), flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        sys.exit(int(sys.argv[2]))
    if what == "raise":
        raise RuntimeError("probe failed on purpose")
    if what == "wait":  # until SIGTERM: exit 143 after saying so
        def bye(signum, _frame):  # type: ignore[no-untyped-def]
            print(f"got signal {signum}", flush=True)
            sys.exit(143)

        signal.signal(signal.SIGTERM, bye)
        print(json.dumps({"pid": os.getpid()}), flush=True)
        time.sleep(120)
        sys.exit(3)
    if what == "sleep":  # ignores nothing: dies of whatever signal comes
        print(json.dumps({"pid": os.getpid()}), flush=True)
        time.sleep(120)
