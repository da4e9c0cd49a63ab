"""``python -m tuiops``: the command line, as the ``tuiops`` console script runs it."""

from tuiops.cli import main

if __name__ == "__main__":
    main()
