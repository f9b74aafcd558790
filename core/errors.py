"""The project's own exception types.

Every error a user can cause (a missing file, a corrupt image, a wrong checkpoint, a bad option) is
raised as one of these, with a one-line message that says what to do. The command line and the app
catch `CxrError` and show the message alone; anything else is a bug and keeps its traceback.
"""


class CxrError(Exception):
    """Base class: a problem the user can fix, described in one line."""


class RadiographError(CxrError):
    """An image file that cannot be used as a radiograph (corrupt, unsupported, refused)."""


class DatasetError(CxrError):
    """A dataset folder that is missing files or does not have the expected layout."""


class CheckpointError(CxrError):
    """A checkpoint that cannot be loaded or does not match what is asked of it."""


class ConfigError(CxrError):
    """An invalid option or combination of options."""


class PretrainedWeightsError(CxrError):
    """Pretrained weights that are missing or do not fit the backbone."""


class RunError(CxrError):
    """A run folder that lacks the files a command needs."""
