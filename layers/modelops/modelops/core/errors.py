"""Error types. Every user-facing failure is a ModelOpsError with a one-line message."""


class ModelOpsError(Exception):
    """A failure the user can act on; the CLI prints its message and exits non-zero."""

    exit_code = 1


class ArtifactIntegrityError(ModelOpsError):
    """The model file does not match the sha256 recorded in its manifest."""


class VersionSkewError(ModelOpsError):
    """The model was trained with a scikit-learn major.minor other than the runtime's."""


class NotFoundError(ModelOpsError):
    """A model, version, alias, bucket or object does not exist."""


class ConflictError(ModelOpsError):
    """A conditional write lost: someone else changed the object first."""


class InputError(ModelOpsError):
    """Bad input data: a field is missing, unknown, of the wrong type or out of range."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid_input"):
        super().__init__(message)
        self.field = field
        self.code = code


class MissingModuleError(ModelOpsError):
    """Loading the model needs a Python module this runtime does not have (a server-side fault)."""

    def __init__(self, message: str, module: str | None):
        super().__init__(message)
        self.module = module


class ModelFault(ModelOpsError):
    """The model failed on rows that match its schema and lie within its training data: a server-side fault."""
