"""The one base of the toolkit's own errors: bad input a person can fix, with a message that says how.

Each module raises its own subclass (RecipeError, DataError, ModelLoadError, EvalError, ...); the command line
catches this base and exits with status 2 and the message on one line. Anything else is a bug.
"""


class AutoThinkError(Exception):
    """Bad input (a recipe, a dataset, a folder, a model, a Hub repo) that cannot be used, with the fix."""
