"""One exception type for bad input, so the CLI can turn it into a one-line message and exit 2."""


class InputError(ValueError):
    """Invalid user input. `field` names what was wrong (a CLI option, a file key, a workload field)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self):  # picklable with both arguments, so it crosses process pools (the calibration fit)
        return InputError, (self.field, self.message)
