"""hw3's built-in experiment plugins, each registered in pyproject.toml's hw3.trainers."""
