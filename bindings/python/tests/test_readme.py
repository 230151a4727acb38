"""The README's Python example, run as written against the honest world.

The example names a public relay; here the options it builds are pointed at
the testbed (its relay, DNS and trust roots) and nothing else changes.
"""

import contextlib
import io
import os
import re
import unittest

import mimi_discovery

from test_discovery import options


def readme_example():
    with open(os.environ["MIMI_README"], encoding="utf-8") as f:
        readme = f.read()
    section = readme.split("### Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


class ReadmeExample(unittest.TestCase):
    def test_the_python_example_runs_as_written(self):
        real = mimi_discovery.DiscovererOptions

        def at_the_testbed(**kwargs):
            # The example's own settings, then the testbed's relay and roots.
            built = options()
            for name, value in kwargs.items():
                if name != "relay":
                    setattr(built, name, value)
            return built

        out = io.StringIO()
        mimi_discovery.DiscovererOptions = at_the_testbed
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(readme_example(), "README.md", "exec"), {})
        finally:
            mimi_discovery.DiscovererOptions = real
        printed = out.getvalue()
        self.assertIn("mimi://alpha.example/u/alice", printed)
        self.assertIn("mimi://beta.example/u/alice.b", printed)


if __name__ == "__main__":
    unittest.main()
