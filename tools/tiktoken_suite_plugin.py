"""pytest plugin for tools/tiktoken_suite.sh: a test of tiktoken's suite that fails only
because it needs an encoding that must be downloaded (gpt2, r50k_base, p50k_base: bpe ships
o200k_base and cl100k_base, and this machine has no network) is reported as skipped, with
the reason; any other failure stays a failure."""

import re

import pytest

_DOWNLOAD = re.compile(r"cannot find (gpt2\.vocab\.bpe|gpt2\.encoder\.json|r50k_base\.tiktoken|p50k_base\.tiktoken)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and call.excinfo.errisinstance(OSError):
        found = _DOWNLOAD.search(str(call.excinfo.value))
        if found:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0,
                               f"Skipped: needs {found.group(1)}, which must be downloaded")
