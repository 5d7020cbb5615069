"""socialcart: a social-commerce recommender sandbox (the umbrella of the console script)."""

__version__ = "0.1.0"
