from algoprogress.config_docs import render


def test_config_readme_is_generated_from_the_schema(repo):
    assert (repo / "config" / "README.md").read_text() == render(), \
        "run: PYTHONPATH=src .venv/bin/python -m algoprogress.config_docs > config/README.md"


def test_readme_leads_with_the_two_commands(repo):
    readme = (repo / "README.md").read_text()
    assert readme.index("make run") < readme.index("make test") < readme.index("## Outputs")
    assert "make test" in (repo / ".ci" / "run").read_text()
