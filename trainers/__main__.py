"""``python -m trainers``: the ``hw3`` command, for when the script is not on PATH."""

from trainers.cli import main

if __name__ == "__main__":
    main()
