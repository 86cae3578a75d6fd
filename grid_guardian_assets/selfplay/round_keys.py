"""Self-play round partition keys (``round-0001``), light enough for the code location to import."""


class SelfPlayError(RuntimeError):
    """A round that cannot run (e.g. its previous round was never materialised)."""


def round_key(number: int) -> str:
    return f"round-{number:04d}"


def round_number(key: str) -> int:
    try:
        return int(key.removeprefix("round-"))
    except ValueError:
        raise SelfPlayError(f"{key!r} is not a round key like round-0001") from None
