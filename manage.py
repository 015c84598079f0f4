#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# Options only Django's command runner understands; with any of them, take the full path.
_DJANGO_OPTIONS = ("--settings", "--pythonpath", "--traceback", "--no-color", "--force-color", "-v",
                   "--verbosity", "--skip-checks", "--version")


def main() -> None:
    argv = sys.argv
    if argv[1:2] == ["classify_bounce"] and not any(a.startswith(_DJANGO_OPTIONS) for a in argv[2:]):
        # The bounce engine is pure Python and needs neither a database nor settings:
        # run it without starting Django (about 0.05 s of start-up instead of 0.5 s), with
        # the same arguments and output as the management command, which remains for help.
        from bounces.parsing.cli import main as classify_main

        sys.exit(classify_main(argv[2:]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bouncemgr.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
