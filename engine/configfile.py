"""Account configuration files: TOML or JSON in, TOML or JSON out, and their JSON Schema.

The file is one ``callerid.AccountConfig``; decoding it with msgspec checks every type, value
limit and unknown field, and errors name the entry (``$.users[2].email``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec

from callerid import AccountConfig

from .errors import ConfigurationError

__all__ = ["Format", "decode", "encode", "format_for", "json_schema"]

Format = Literal["toml", "json"]

_json_decoder = msgspec.json.Decoder(AccountConfig)


def format_for(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return "toml"
    if suffix == ".json":
        return "json"
    raise ConfigurationError(
        f"{path}: expected a .toml or .json file, not {suffix or 'no suffix'!r}"
    )


def decode(data: bytes, fmt: Format, *, source: str = "configuration") -> AccountConfig:
    """The account in ``data``; ``ConfigurationError`` naming the entry when it is not one."""
    try:
        if fmt == "toml":
            return msgspec.toml.decode(data, type=AccountConfig)
        return _json_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigurationError(f"{source}: not valid {fmt.upper()}: {exc}") from None


def encode(config: AccountConfig, fmt: Format) -> bytes:
    if fmt == "toml":
        return msgspec.toml.encode(config)
    return msgspec.json.format(msgspec.json.encode(config), indent=2) + b"\n"


def json_schema() -> dict[str, Any]:
    schema = msgspec.json.schema(AccountConfig)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "callgate account configuration"
    return schema
