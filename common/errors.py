"""Errors that reach the user as one clear line (no traceback)."""


class UserError(Exception):
    """Bad input from the user: a missing file, an unknown device, a malformed preset."""


class BundleError(UserError):
    """A model bundle that fails its format or hash check; the message names the file."""


class PresetError(UserError):
    """A preset or controller map that cannot be used; the message names the file and key."""
