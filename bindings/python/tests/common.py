"""Shared by the tests: finds the package, the library and parley-server, and
bounds the whole test's run time."""

import faulthandler
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # bindings/python: the parley package

# Whatever happens, a test never hangs: dump every thread's stack and exit.
faulthandler.dump_traceback_later(int(os.environ.get("PARLEY_TEST_TIMEOUT", "150")), exit=True)


def server_binary():
    path = os.environ.get("PARLEY_SERVER")
    if not path:
        sys.exit("set PARLEY_SERVER to the parley-server binary")
    return path
