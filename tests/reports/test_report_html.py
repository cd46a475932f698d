"""`attnsim report` and `attnsim plot`, run as a user would: the page links only files that exist."""

from html.parser import HTMLParser
from pathlib import Path

import pytest

from cli_helpers import run_cli
from report_helpers import DATA, SMALL_TOML


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets, self.images, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids.add(attrs.get("id"))
        if tag in ("img", "a", "link", "script") and (attrs.get("src") or attrs.get("href")):
            self.targets.append(attrs.get("src") or attrs.get("href"))
        if tag == "img":
            self.images.append(attrs["src"])


def parse_page(index: Path) -> Links:
    links = Links()
    links.feed(index.read_text())
    return links


def assert_links_resolve(index: Path, links: Links) -> None:
    for target in links.targets:
        if target.startswith("#"):
            assert target[1:] in links.ids, target
        else:
            assert "://" not in target and not target.startswith("/"), target  # self-contained
            assert (index.parent / target).is_file(), target
            assert (index.parent / target).stat().st_size > 0, target


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("scn") / "small.toml"
    path.write_text(SMALL_TOML)
    return path


def test_report_with_measurements_links_only_existing_files(scenario_file, tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, err = run_cli(["report", "--scenario", str(scenario_file), "--out", str(out),
                                 "--measurements", str(DATA / "sdpa_small.csv")], capsys)
    assert code == 0, err
    index = out / "index.html"
    assert str(index) in stdout
    links = parse_page(index)
    assert_links_resolve(index, links)
    assert {"summary", "modelled", "gpus", "speedup", "ragged", "timeline", "occupancy", "whatif",
            "validation", "files"} <= links.ids
    assert sorted(links.images) == ["occupancy.png", "speedup.png", "timeline.png", "validation.png", "whatif.png"]
    text = index.read_text()
    assert "<title>small</title>" in text and "datasheet" in text and "MAPE" in text


def test_report_without_optional_sections_still_links_only_existing_files(tmp_path, capsys):
    scenario = tmp_path / "uniform.toml"
    scenario.write_text('models = ["qwen2.5-7b"]\ncontexts = ["2k", "32k"]\n')
    out = tmp_path / "r"
    (out).mkdir()
    (out / "index.html").write_text("<div>generated 2026-01-01 00:00 UTC by attnsim 0</div>")  # an earlier report
    (out / "validation.png").write_text("stale")  # a previous run's file is not linked, nor kept
    code, _, err = run_cli(["report", "--scenario", str(scenario), "--out", str(out), "--no-whatif",
                            "--figures", "svg"], capsys)
    assert code == 0, err
    links = parse_page(out / "index.html")
    assert_links_resolve(out / "index.html", links)
    assert "whatif" not in links.ids and "validation" not in links.ids and "ragged" not in links.ids
    assert "validation.png" not in links.targets and not (out / "validation.png").exists()
    assert sorted(links.images) == ["occupancy.svg", "speedup.svg", "timeline.svg"]


@pytest.mark.parametrize("args, field", [
    (["report", "--scenario", "no-such-scenario", "--out", "x"], "scenario"),
    (["report", "--scenario", "default", "--out", "x", "--measurements", "missing.csv"], "measurements"),
    (["plot", "speedup", "--scenario", "default", "--out", "x.jpg"], "out"),
    (["plot", "timeline", "--context", "1k,2k", "--out", "x.png"], "context"),
    (["plot", "whatif", "--scenario", "default", "--model", "llama-3.1-8b", "--out", "x.png"], "scenario"),
    (["plot", "whatif", "--gpus", "h100,a100", "--kv-dtype", "fp8", "--out", "x.png"], "kv_dtype"),  # A100: no fp8
])
def test_bad_input_is_one_line_and_exit_2(args, field, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert err.startswith(f"attnsim: error: {field}") and err.count("\n") == 1


@pytest.mark.parametrize("args", [
    ["plot", "timeline", "--model", "llama-3.1-8b", "--contexts", "1000,9000,3000", "--strategy", "streamk"],
    ["plot", "occupancy", "--scenario", "gqa-sweep", "--gpu", "h100,l40s"],
    ["plot", "validation", "--measurements", str(DATA / "sdpa_small.csv"), "--gpu", "h100"],
    ["plot", "whatif", "--gpus", "h100,h200,b200", "--model", "llama-3.1-70b", "--tp", "8", "--context", "8k,64k"],
])
def test_plot_commands_write_their_figure(args, tmp_path, capsys):
    out = tmp_path / "fig.png"
    code, _, err = run_cli(args + ["--out", str(out)], capsys)
    assert code == 0, err
    assert out.read_bytes().startswith(b"\x89PNG")


def test_scenarios_command_checks_a_file(scenario_file, capsys):
    code, out, _ = run_cli(["scenarios", "--check", str(scenario_file)], capsys)
    assert code == 0 and out.strip().endswith("OK")
    code, out, _ = run_cli(["scenarios"], capsys)
    assert "default" in out and "llama-3.1-405b" in out
