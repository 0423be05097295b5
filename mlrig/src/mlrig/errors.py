"""The one base of every error a user can fix: commands print its message, not a traceback."""


class ProjectError(Exception):
    """A problem with the input, the data or the environment; the message says what to do."""
