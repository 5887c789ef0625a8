"""Render config/README.md from the schemas' descriptions and defaults (one source of truth).

    PYTHONPATH=src .venv/bin/python -m algoprogress.config_docs > config/README.md
"""

from __future__ import annotations

import yaml

from algoprogress.config import SCHEMA_DIR

INTRO = """# Configuration

`config/config.yaml` is the default experiment (the bundled MNIST miniature). Pass another file with
`--configfile FILE`: Snakemake merges it over the default (mappings key by key; lists such as `models`
are replaced whole). Before any job starts, the merged config is validated against
`config/schema/config.schema.yaml` (each model against `config/schema/model.schema.yaml`), defaults
are filled in, and a problem stops the run with one line naming the key, e.g.
`config error: models[2].published: '2015-13-01' is not a valid date (YYYY-MM-DD)`.

Runtime settings (cores, threads, GPUs, cluster resources) are not config: they come from the command
line and profiles.

This page is generated from the schemas by `PYTHONPATH=src .venv/bin/python -m algoprogress.config_docs`; a test
keeps it in step.
"""


def _value(value) -> str:
    return "`" + yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip() + "`"


def _table(properties: dict, prefix: str) -> list[str]:
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for key, spec in properties.items():
        default = _value(spec["default"]) if "default" in spec else "required"
        rows.append(f"| `{prefix}{key}` | {default} | {' '.join(spec.get('description', '').split())} |")
    return rows


def render() -> str:
    schema = yaml.safe_load((SCHEMA_DIR / "config.schema.yaml").read_text())
    model = yaml.safe_load((SCHEMA_DIR / "model.schema.yaml").read_text())
    lines = [INTRO]
    for section in ("dataset", "thresholds", "training", "analysis"):
        spec = schema["properties"][section]
        if "items" in spec:  # a list of entries: document an entry's keys
            properties, prefix = spec["items"]["properties"], f"{section}[]."
        else:
            properties, prefix = spec.get("properties") or schema["$defs"]["training"]["properties"], f"{section}."
        lines += [f"## `{section}`", "", " ".join(spec["description"].split()), "", *_table(properties, prefix), ""]
    lines += ["## `models`", "", " ".join(schema["properties"]["models"]["description"].split()), "",
              *_table(model["properties"], "models[]."), ""]
    top_level = {key: spec for key, spec in schema["properties"].items() if "properties" not in spec
                 and "items" not in spec and "$ref" not in spec and key != "recipes"}
    lines += ["## Top-level settings", "", *_table(top_level, ""), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
