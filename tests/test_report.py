"""`heterodyne report` (dataset page and index page) on the saved result set of figures_fixtures.

Checks: every parameter name, the input SHA-256 and the config hash appear; numbers in the tables
equal the saved results; each angle's noise model, how the NLSQ standard errors were computed and
the CMC widening factors; warnings, run times ("not recorded" without benchmark files); figures
embedded at screen resolution (pixel size, palette or full colour, mean colour kept, page size)
with links to the PDFs beside them, nothing else referenced; index links; bad input; versions that
differ from requirements.lock flagged on both pages (and nothing when they agree). The Chromium
test (skipped where `chromium` is absent) renders the page headless and counts images that failed
to load.
"""

import base64
import hashlib
import io
import json
import re
import shutil
import subprocess

import cli_args
import figures_fixtures as ff
import numpy as np
import pytest
import yaml
from matplotlib import image as mpimg
from PIL import Image

from heterodyne import software_lock
from heterodyne.cli import main
from heterodyne.config import validate_config
from heterodyne.core.parameters import PARAMETER_NAMES
from heterodyne.fit.uncertainty import STDERR_SANDWICH, STDERR_SCALING
from heterodyne.lineage import read_provenance
from heterodyne.provenance import package_versions, provenance_record
from heterodyne.report.dataset_page import noise_model_text, uncertainty_text
from heterodyne.report.screen_png import MAX_SIDE, screen_png, screen_scale
from heterodyne.weighting.weights_file import AngleWeights, load_weights


@pytest.fixture(scope="session")
def saved(tmp_path_factory):
    return ff.build_figures(tmp_path_factory.getbasetemp() / "saved_results")


def _report(saved, results_dir, output):
    return main(
        [
            "report",
            *cli_args.whole_config(saved["config"]),
            "--name",
            ff.NAME,
            "--results-dir",
            str(results_dir),
            "--output",
            str(output),
        ]
    )


@pytest.fixture(scope="session")
def report(saved):
    output = saved["results"] / "report.html"
    assert _report(saved, saved["results"], output) == 0
    return output


@pytest.fixture(scope="session")
def html(report):
    return report.read_text(encoding="utf-8")


def test_report_names_every_parameter_and_carries_input_and_config_hashes(saved, html):
    for name in PARAMETER_NAMES + ("contrast_0", "contrast_1", "offset_0", "offset_1"):
        assert f"<td>{name}</td>" in html, name
    raw_sha = hashlib.sha256(saved["raw"].read_bytes()).hexdigest()
    assert raw_sha in html and str(saved["raw"]) in html
    validated = validate_config(
        yaml.safe_load(saved["config"].read_text())
    )  # the config as the steps see it: defaults filled in
    digest = hashlib.sha256(json.dumps(validated, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert digest in html
    assert saved["provenance"]["config_sha256"] in html  # per-step hashes recorded by the fixture
    assert "residual_limit: 4.0" in html  # the config itself, defaults filled in


def test_parameter_table_shows_saved_nlsq_and_cmc_numbers(saved, html):
    entry = saved["summary"]["parameters"]["D0_ref"]
    # D0_ref: NLSQ 5000 +/- (0.01 * 5000 + 0.01) shown to 3 digits; CMC mean to 6 digits and 90 % CI
    assert "<td>5000 ± 50</td>" in html
    assert f'<td class="num">{entry["mean"]:.6g}</td>' in html
    assert f"<td>[{entry['q05']:.6g}, {entry['q95']:.6g}]</td>" in html
    assert "<td>0 (fixed)</td>" in html  # e.g. phi0
    row_phi0 = re.search(r"<td>phi0</td>.*?</tr>", html).group(0)
    assert "not sampled" in row_phi0
    # the last two columns: (CMC mean - NLSQ value) / se and CMC sd / se, from the draws ~ N(truth, se)
    row_d0 = re.findall(r"<td[^>]*>(.*?)</td>", re.search(r"<td>D0_ref</td>.*?</tr>", html).group(0))
    assert row_d0[-2:] == [f"{(entry['mean'] - 5000) / 50.01:.3g}", f"{entry['sd'] / 50.01:.3g}"]
    assert abs((entry["mean"] - 5000) / 50.01) < 0.2 and 0.9 < entry["sd"] / 50.01 < 1.1
    assert re.findall(r"<td[^>]*>(.*?)</td>", row_phi0)[-2:] == ["-", "-"]
    for chi2 in saved["nlsq"]["reduced_chi2_per_angle"]:
        assert f'<td class="num">{chi2:.5g}</td>' in html


def test_quality_table_names_each_angles_noise_model(saved, html):
    section = re.search(r'<section id="quality">(.*?)</section>', html, re.S).group(1)
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr><td.*?</tr>", section)]
    kappa = load_weights(saved["results"] / "weights.json").noise[ff.SPECKLE_ANGLE].kappa
    # phi, reduced chi2, noise model, sigma, ...: the first angle independent, the second speckle
    assert [row[:4] for row in rows] == [
        ["10", f"{saved['nlsq']['reduced_chi2_per_angle'][0]:.5g}", "independent", "0.01"],
        ["70", f"{saved['nlsq']['reduced_chi2_per_angle'][1]:.5g}", f"speckle, kappa = {kappa:.3g}", "0.01"],
    ]


def test_page_says_how_standard_errors_were_computed_and_how_cmc_was_widened(html):
    section = " ".join(re.search(r'<section id="parameters">(.*?)</section>', html, re.S).group(1).split())
    assert (
        f"NLSQ standard errors: {STDERR_SANDWICH}; the CMC posterior was widened to the NLSQ sandwich "
        "covariance (elements share frames), sd x D0_ref 1.21, v0 1.07."
    ) in section.replace("&#x27;", "'")


def test_older_records_without_noise_fields_read_as_independent_and_not_widened():
    assert uncertainty_text({"stderr_scaling": STDERR_SCALING}, {}).endswith(
        "(chi2 / dof), J the Jacobian of the sigma-weighted residuals in all free parameters including contrast "
        "and offset; the CMC posterior was not widened."
    )
    assert uncertainty_text({}, {"noise_adjustment": None}) == (
        "NLSQ standard errors: not recorded; the CMC posterior was not widened."
    )
    old = AngleWeights(phi=ff.PHI, sigma=np.full(2, ff.SIGMA), contrast=ff.CONTRAST, offset=ff.OFFSET, method="robust")
    assert [noise_model_text(old, a) for a in range(2)] == ["independent", "independent"]


def test_warnings_list_non_convergence_bound_flagged_shard_and_combined(saved, html):
    section = re.search(r'<section id="warnings">(.*?)</section>', html, re.S).group(1)
    items = re.findall(r'<li class="warn">(.*?)</li>', section)
    assert len(items) == 5
    assert "NLSQ did not converge" in items[0] and "maximum number of function evaluations" in items[0]
    assert "f3" in items[1] and "at a bound" in items[1]
    assert items[2] == (
        "CMC shard 1 flagged: 7 divergences; 75 draws at tree depth limit 8; R-hat 1.0800 &gt; 1.01 "
        "(v0); bulk ESS 80 &lt; 400 (v0); tail ESS 60 &lt; 400 (f0); E-BFMI 0.210 &lt; 0.3 (chain 0)."
    )
    assert items[3] == "CMC combined posterior flagged: bulk ESS 250 &lt; 400 (D0_ref); tail ESS 300 &lt; 400 (D0_ref)."
    sd = saved["summary"]["parameters"][ff.UNDETERMINED]["sd"]
    assert items[4] == (
        f"CMC: alpha_sample is not determined by the data: posterior sd {sd:.3g} is 0.50 of its "
        f"prior sd {2 * sd:.3g} (limit 0.3), so its posterior mostly repeats the prior (cmc.prior)."
    )


def test_shard_table_shows_every_diagnostic_of_the_summary(html):
    rows = re.findall(r"<h3>CMC shards</h3>.*?<tbody>(.*?)</tbody>", html, re.S)[0].split("</tr>")
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows[:2]]
    # shard, divergences, max R-hat, min bulk/tail ESS, tree depth mean / max, % at limit, step sizes,
    # min E-BFMI, flagged (+ reasons), wall time: the fixture's numbers
    assert cells[0] == ["0", "0", "1.003", "820", "640", "3.2 / 4", "0", "0.41, 0.39", "0.95", "no", "20"]
    assert cells[1][:9] == ["1", "7", "1.08", "80", "60", "7.5 / 8", "25", "0.021, 0.034", "0.21"]
    assert cells[1][9].startswith("yes: 7 divergences; 75 draws at tree depth limit 8;") and cells[1][10] == "21"
    combined = re.search(r"<td>consensus draws</td>(.*?)</tr>", html).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", combined)[:3] == ["1.002", "250", "300"]
    assert "R-hat &lt;= 1.01, bulk and tail ESS &gt;= 400 and E-BFMI &gt;= 0.3" in html  # the fixture's limits


def test_run_times_are_the_benchmark_means(html):
    assert '<td>fit_nlsq</td><td class="num">13</td>' in html  # mean of 12.5 and 13.5 s
    assert '<td>ingest</td><td class="num">0.75</td>' in html


def _mean_rgb(image):
    with image:
        return np.asarray(image.convert("RGB"), dtype=float).mean(axis=(0, 1))


def test_figures_are_embedded_at_screen_resolution(saved, report, html):
    figures = saved["results"] / "figures"
    embedded = dict(re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', html))
    assert sorted(embedded) == sorted(p.stem for p in figures.glob("*.png"))
    for stem, data in embedded.items():
        with Image.open(figures / f"{stem}.png") as full:
            width, height = full.size  # saved at 200 dpi; shown at 96 dpi, one CSS pixel per dot
        with Image.open(io.BytesIO(base64.b64decode(data))) as screen:
            assert screen.size == (round(width * 0.48), round(height * 0.48)), stem
            assert max(screen.size) <= MAX_SIDE
            assert screen.mode == ("RGB" if stem.startswith("c2_maps") else "P"), stem  # heat maps: full colour
        # averaging over the pixels each screen pixel covers keeps the mean colour (within a level)
        np.testing.assert_allclose(
            _mean_rgb(Image.open(io.BytesIO(base64.b64decode(data)))),
            _mean_rgb(Image.open(figures / f"{stem}.png")),
            atol=1.0,
            err_msg=stem,
        )
    full_bytes = sum(p.stat().st_size for p in figures.glob("*.png"))
    assert sum(len(base64.b64decode(d)) for d in embedded.values()) < full_bytes / 3
    assert report.stat().st_size < 3e6


def test_only_the_pdf_copies_beside_the_page_are_referenced(saved, report, html):
    assert re.findall(r'src="(?!data:)', html) == []
    assert "<link" not in html and "@import" not in html
    links = re.findall(r'href="([^"]+)"', html)
    stems = sorted(p.stem for p in (saved["results"] / "figures").glob("*.png"))
    assert links == [f"figures/{stem}.pdf" for stem in sorted(stems, key=lambda s: html.index(f'id="{s}"'))]
    assert all((report.parent / link).read_bytes().startswith(b"%PDF") for link in links)


def test_pdf_links_are_relative_to_where_the_page_is_written(saved, tmp_path):
    output = tmp_path / "elsewhere" / "report.html"
    output.parent.mkdir()
    assert _report(saved, saved["results"], output) == 0
    links = re.findall(r'href="([^"]+)"', output.read_text())
    assert links and all(link.startswith("../") for link in links)
    assert all(
        (output.parent / link).resolve() == (saved["results"] / "figures" / link.split("/")[-1]).resolve()
        for link in links
    )


def test_screen_scale_takes_96_dpi_and_at_most_1600_pixels():
    assert screen_scale((2400, 800), (200, 200)) == pytest.approx(0.48)
    assert screen_scale((4000, 1000), (200, 200)) == pytest.approx(0.4)  # 1600 / 4000 px
    assert screen_scale((3200, 100), None) == 0.5
    assert screen_scale((300, 200), (72, 72)) == 1.0  # never enlarged


def test_screen_png_averages_each_block_and_puts_transparency_on_white():
    pixels = np.zeros((4, 4, 4), dtype=np.uint8)
    pixels[:, :2] = (200, 0, 0, 255)  # left half opaque red
    pixels[:2, 2:] = (0, 0, 100, 255)  # top right opaque dark blue, bottom right transparent
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, format="PNG", dpi=(192, 192))  # 96 / 192: 2 x 2 blocks
    with Image.open(io.BytesIO(screen_png(buffer.getvalue(), full_colour=True))) as screen:
        assert screen.mode == "RGB"
        assert np.asarray(screen).tolist() == [[[200, 0, 0], [0, 0, 100]], [[200, 0, 0], [255, 255, 255]]]


def test_missing_pdf_copy_exits_2_and_writes_nothing(saved, tmp_path, capsys):
    results = tmp_path / ff.NAME
    shutil.copytree(saved["results"], results, ignore=shutil.ignore_patterns("report.html"))
    (results / "figures" / "physics_curves.pdf").unlink()
    assert _report(saved, results, tmp_path / "report.html") == 2
    err = capsys.readouterr().err
    assert "physics_curves.pdf: PDF copy missing for physics_curves.png" in err and "heterodyne figures" in err
    assert not (tmp_path / "report.html").exists()


def test_report_without_benchmarks_says_not_recorded(saved, tmp_path):
    results = tmp_path / ff.NAME
    shutil.copytree(saved["results"], results, ignore=shutil.ignore_patterns("benchmarks", "report.html"))
    assert _report(saved, results, tmp_path / "report.html") == 0
    assert "Run time per step: not recorded" in (tmp_path / "report.html").read_text()


def test_index_links_every_report_with_headline_numbers(saved, report, tmp_path):
    root = tmp_path / "results"
    for name in ("alpha", ff.NAME):
        shutil.copytree(saved["results"], root / name / "q0.01", ignore=shutil.ignore_patterns("figures", "*.h5"))
    (root / "empty").mkdir()  # a folder without report.html is not listed
    # a result whose recorded input (inside the results folder) is gone: the audit fails on it only
    gone = root / "alpha" / "q0.01" / "gone.txt"
    gone.write_text("input")
    (root / "alpha" / "q0.01" / "orphan.json").write_text(json.dumps({"provenance": provenance_record({}, [gone])}))
    gone.unlink()
    assert main(["audit", str(root), "--output", str(root / "audit.json")]) == 1
    audit = json.loads((root / "audit.json").read_text())
    failed = [f["file"] for f in audit["files"] if not f["passed"]]
    assert failed == ["alpha/q0.01/orphan.json"] and len(audit["files"]) == 9
    assert cli_args.index_page(root) == 0
    index = (root / "index.html").read_text()
    assert f"{len(audit['files'])} files checked against the inputs they record, {len(failed)} failed" in index
    assert all(f"<td>{name}</td>" in index for name in failed)
    assert re.findall(r'<a href="([^"]+)">', index) == ["alpha/q0.01/report.html", f"{ff.NAME}/q0.01/report.html"]
    row = re.search(rf'<tr><td><a href="{ff.NAME}/q0.01/report.html">.*?</tr>', index).group(0)
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[1:4] == ["no", f"{saved['nlsq']['reduced_chi2']:.5g}", "1"]
    assert cells[4] == '<span class="warn">5</span>'  # the five warnings of the dataset page


def test_dataset_page_shows_the_cross_q_verdict_when_given(saved, tmp_path):
    record = {
        "dataset": ff.NAME,
        "q": [0.005, 0.01],
        "alpha": 0.05,
        "reason": None,
        "left_out": [],
        "q_dependent": True,
        "significant": ["D0_sample"],
        "test": {
            "names": ["D0_sample"],
            "parameters": {
                "D0_sample": {
                    "unit": "A^2/s",
                    "mean": 2.0e4,
                    "se": 50.0,
                    "chi2": 40.0,
                    "dof": 1,
                    "p": 2.5e-10,
                    "p_holm": 2.5e-10,
                    "significant": True,
                }
            },
            "joint": {"names": ["D0_sample"], "chi2": 40.0, "dof": 1, "p": 2.5e-10, "significant": True},
        },
    }
    path = tmp_path / "cross_q.json"
    path.write_text(json.dumps(record))
    output = tmp_path / "report.html"
    assert (
        main(
            [
                "report",
                *cli_args.whole_config(saved["config"]),
                "--name",
                ff.NAME,
                "--results-dir",
                str(saved["results"]),
                "--cross-q",
                str(path),
                "--output",
                str(output),
            ]
        )
        == 0
    )
    html = output.read_text()
    assert 'id="cross-q"' in html
    assert "Significant q-dependence of D0_sample: evidence against the model over this q range" in html
    assert str(path) in read_provenance(output)["input_sha256"]


def _lock_warning(page):
    """Rows (cells) of the page's requirements.lock warning table; None without the warning."""
    found = re.search(r'<p class="warn">Software differs from requirements.lock.*?<tbody>(.*?)</tbody>', page, re.S)
    return (
        None
        if found is None
        else [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", found.group(1))]
    )


def test_versions_that_differ_from_the_lock_file_are_flagged_on_both_pages(saved, report, tmp_path, monkeypatch):
    installed = package_versions()
    lock = tmp_path / "requirements.lock"
    monkeypatch.setattr(software_lock, "LOCK_FILE", lock)
    lock.write_text(
        "".join(f"{name}=={version} \\\n    --hash=sha256:{'0' * 64}\n" for name, version in installed.items())
    )
    agree = tmp_path / "agree.html"
    assert _report(saved, saved["results"], agree) == 0
    assert _lock_warning(agree.read_text()) is None
    lock.write_text(f"numpyro==0.0.1 \\\n    --hash=sha256:{'0' * 64}\njax=={installed['jax']}\n")
    output = tmp_path / "report.html"
    assert _report(saved, saved["results"], output) == 0
    steps = "ingest (dataset.h5), weight (weights.json), fit-nlsq (nlsq.json), cmc-combine (cmc/summary.json)"
    assert _lock_warning(output.read_text()) == [["numpyro", installed["numpyro"], "0.0.1", f"{steps}, report"]]
    root = tmp_path / "results"
    shutil.copytree(saved["results"], root / ff.NAME / "q0.01", ignore=shutil.ignore_patterns("figures", "*.h5"))
    (root / "audit.json").write_text(json.dumps({"passed": True, "files": [], "not_audited": 0}))
    assert cli_args.index_page(root) == 0
    records = f"{ff.NAME}/q0.01/nlsq.json, {ff.NAME}/q0.01/cmc/summary.json, index page"
    assert _lock_warning((root / "index.html").read_text()) == [["numpyro", installed["numpyro"], "0.0.1", records]]


def test_missing_summary_exits_2_and_writes_nothing(saved, tmp_path, capsys):
    results = tmp_path / ff.NAME
    shutil.copytree(saved["results"], results, ignore=shutil.ignore_patterns("summary.json", "report.html"))
    assert _report(saved, results, tmp_path / "report.html") == 2
    err = capsys.readouterr().err
    assert "summary.json" in err and "not found" in err
    assert not (tmp_path / "report.html").exists()


def test_index_without_reports_exits_2(tmp_path, capsys):
    assert (
        main(
            [
                "report",
                "--index",
                "--results-root",
                str(tmp_path),
                "--audit",
                str(tmp_path / "audit.json"),
                "--output",
                str(tmp_path / "i.html"),
            ]
        )
        == 2
    )
    assert "no <dataset>/<q folder>/report.html" in capsys.readouterr().err


_CHECK_IMAGES = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter(img => !(img.complete && img.naturalWidth > 0));
  document.body.setAttribute("data-image-check", images.length + "/" + broken.length);
});
</script></body>"""
CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package `chromium` not installed")
def test_report_renders_in_headless_chromium_with_no_missing_image(saved, html, tmp_path):
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--virtual-time-budget=10000",
    ]
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", _CHECK_IMAGES, 1), encoding="utf-8")
    dom = subprocess.run(
        [*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    n_png = len(list((saved["results"] / "figures").glob("*.png")))
    assert f'data-image-check="{n_png}/0"' in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,1600", (saved["results"] / "report.html").as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    assert 0.01 < np.mean(pixels.min(axis=-1) < 0.9) < 0.9  # text and tables drawn, not a blank page
