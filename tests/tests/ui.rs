//! `xp ui` in a real browser (Debian's chromium through chromedriver): the pages show the
//! history, charts draw the logged values, a running run updates live and cancels from its
//! page, compare overlays runs, downloads return the artifact's bytes. Screenshots of each page
//! go to `target/ui-screenshots/`. The HTTP-level rules (paths, token, origin) are in
//! `ui_http.rs`.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;
use xp_tests::browser::{http, model_bytes, train, wait_for_log, Browser, CancelOnDrop, UiServer, TRAIN};
use xp_tests::{profile_dir, TestProject};

/// One chromium at a time: the machine has two cores.
static BROWSER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The values a chart's polyline draws, read back through the data ranges on its `<svg>`:
/// one list per line, with the line's label.
async fn drawn_values(browser: &Browser, figure_css: &str) -> Vec<(String, Vec<(f64, f64)>)> {
    let script = format!(
        r#"const figure = document.querySelector({css});
        if (!figure) return null;
        const g = figure.querySelector("svg.chart g.frame");
        const n = (k) => parseFloat(g.getAttribute("data-" + k));
        const f = {{xmin: n("xmin"), xmax: n("xmax"), ymin: n("ymin"), ymax: n("ymax"), left: n("left"), top: n("top"), width: n("width"), height: n("height")}};
        return [...figure.querySelectorAll("polyline.series")].map((line) => [line.getAttribute("data-label"),
            line.getAttribute("points").trim().split(" ").map((p) => p.split(",").map(Number)).map(([x, y]) => [
                f.xmin + (x - f.left) / f.width * (f.xmax - f.xmin),
                f.ymax - (y - f.top) / f.height * (f.ymax - f.ymin)])]);"#,
        css = serde_json::to_string(figure_css).unwrap()
    );
    let value = browser.eval(&script).await;
    value
        .as_array()
        .unwrap_or_else(|| panic!("no chart {figure_css}"))
        .iter()
        .map(|line| {
            let points = line[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
                .collect();
            (line[0].as_str().unwrap().to_owned(), points)
        })
        .collect()
}

/// Asserts the drawn points are (step, scale / (step + 1)) for steps 0..30, to within what two
/// decimals of a pixel can hold.
fn assert_loss_curve(points: &[(f64, f64)], scale: f64) {
    assert_eq!(points.len(), 30, "every logged point is drawn: {points:?}");
    for (step, (x, y)) in points.iter().enumerate() {
        let expected = scale / (step as f64 + 1.0);
        assert!((x - step as f64).abs() < 0.05, "step {step} drawn at x {x}");
        assert!(
            (y - expected).abs() < scale * 0.002,
            "step {step}: drawn {y}, logged {expected}"
        );
    }
}

#[tokio::test]
async fn the_runs_page_lists_the_history_and_a_run_page_charts_its_logged_values() {
    let project = TestProject::new();
    project.write("train.py", TRAIN);
    let seeder = profile_dir().join("xp-seed-history");
    let seeded = std::process::Command::new(&seeder)
        .args(["--runs", "500", "--metrics", "3000", "--project"])
        .arg(project.root())
        .output()
        .expect("xp-seed-history runs");
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    let runs: Vec<String> = ["0.1", "0.3", "0.5"].iter().map(|s| train(&project, s)).collect();
    let listed: Value = serde_json::from_str(
        &project
            .xp(["history", "list", "-n", "50", "-o", "json"])
            .run()
            .success()
            .stdout,
    )
    .unwrap();
    let expected_ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();

    let _one_browser = BROWSER_LOCK.lock().await;
    let ui = UiServer::start(&project, "127.0.0.1");
    let browser = Browser::start().await;
    browser.client.goto(&ui.url).await.unwrap();
    assert_eq!(browser.text_of("#total").await, "503 runs");
    let shown = browser
        .eval("return [...document.querySelectorAll('#runs tbody tr')].map((r) => r.getAttribute('data-run'));")
        .await;
    let shown: Vec<&str> = shown.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(
        shown, expected_ids,
        "the newest 50 runs, newest first, as `xp history list` has them"
    );
    let loss_cell = browser
        .text_of("#runs tbody tr:first-child td[data-metric='loss']")
        .await;
    assert_eq!(loss_cell, "0.0167", "the last loss of the newest run (0.5 / 30)");
    browser.screenshot("runs").await;

    // Sorting by a column and filtering by text go through the address, so they can be shared.
    browser
        .client
        .goto(&format!("{}/?q=train.py&sort=number&order=asc", ui.base))
        .await
        .unwrap();
    let rows = browser
        .eval("return [...document.querySelectorAll('#runs tbody tr')].map((r) => [Number(r.getAttribute('data-number')), r.children[5].textContent]);")
        .await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|r| r[1] == "train.py"), "{rows:?}");
    assert!(
        rows.windows(2).all(|w| w[0][0].as_u64() < w[1][0].as_u64()),
        "ascending: {rows:?}"
    );

    browser.client.goto(&ui.url).await.unwrap();
    let link = format!("#runs a[href='/runs/{}']", runs[1]);
    browser.click(&link).await;
    browser
        .wait_for(
            "the run page",
            Duration::from_secs(10),
            "return document.getElementById('run') !== null;",
        )
        .await;
    let lines = drawn_values(&browser, "figure[data-series='loss']").await;
    assert_eq!(lines.len(), 1);
    assert_loss_curve(&lines[0].1, 0.3);
    let scalars = browser.text_of("#scalars").await;
    assert!(scalars.contains("accuracy") && scalars.contains("0.9"), "{scalars}");
    let log = browser.text_of("#log").await;
    assert!(log.contains("step 29"), "the whole log once the run ended: {log}");
    browser.screenshot("run").await;
    browser.close().await;
}

#[tokio::test]
async fn a_running_run_shows_new_log_lines_and_metric_points_without_a_reload_and_cancels_from_its_page() {
    let project = TestProject::new();
    let control = project.home().join("control");
    std::fs::create_dir_all(&control).unwrap();
    // Each step waits for the test's go-N file, so the test decides when output appears.
    project.write(
        "live.py",
        r#"import os, sys, time
from xp_logging import log_metric
control = sys.argv[1]
for i in range(1000):
    while not os.path.exists(os.path.join(control, "go-%d" % i)):
        time.sleep(0.05)
    print("tick %d" % i, flush=True)
    log_metric("progress", i * 1.5)
"#,
    );
    let run = project
        .xp(["-q", "submit", "-a", "live.py"])
        .command()
        .arg(&control)
        .output()
        .expect("xp submit -a runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let run = String::from_utf8_lossy(&run.stdout).trim().to_owned();
    let _cancel = CancelOnDrop {
        project: &project,
        run: run.clone(),
    };
    for i in 0..2 {
        std::fs::write(control.join(format!("go-{i}")), "").unwrap();
    }
    wait_for_log(&project, &run, "tick 1");

    let _one_browser = BROWSER_LOCK.lock().await;
    let ui = UiServer::start(&project, "127.0.0.1");
    let browser = Browser::start().await;
    browser.client.goto(&format!("{}/runs/{run}", ui.base)).await.unwrap();
    assert_eq!(
        browser
            .eval("return document.querySelector('#status .status').textContent;")
            .await,
        "Running"
    );
    browser.eval("window.sameDocument = 'yes'; return true;").await;
    for i in 2..6 {
        std::fs::write(control.join(format!("go-{i}")), "").unwrap();
    }
    browser
        .wait_for(
            "log line tick 5 on the page",
            Duration::from_secs(20),
            "return document.getElementById('log').textContent.includes('tick 5');",
        )
        .await;
    browser
        .wait_for(
            "six points on the progress chart",
            Duration::from_secs(20),
            "const l = document.querySelector(\"figure[data-series='progress'] polyline.series\"); return l && l.getAttribute('points').trim().split(' ').length === 6;",
        )
        .await;
    let lines = drawn_values(&browser, "figure[data-series='progress']").await;
    let values: Vec<f64> = lines[0].1.iter().map(|(_, y)| *y).collect();
    for (i, value) in values.iter().enumerate() {
        assert!((value - i as f64 * 1.5).abs() < 0.02, "point {i}: {values:?}");
    }
    assert_eq!(
        browser.eval("return window.sameDocument;").await,
        "yes",
        "the page updated in place, without a reload"
    );
    let log = browser.eval("return document.getElementById('log').textContent;").await;
    let log = log.as_str().unwrap();
    for i in 0..6 {
        assert_eq!(log.matches(&format!("tick {i}\n")).count(), 1, "tick {i} once: {log}");
    }
    browser.screenshot("run-live").await;

    // Cancel, behind the confirmation dialog.
    browser.click("#cancel").await;
    let question = browser.client.get_alert_text().await.expect("a confirmation");
    assert!(question.contains(&run), "{question}");
    browser.client.accept_alert().await.unwrap();
    browser
        .wait_for(
            "the run shown as Canceled",
            Duration::from_secs(40),
            "const s = document.querySelector('#status .status'); return s && s.textContent === 'Canceled';",
        )
        .await;
    assert_eq!(project.run_record(&run)["status"], "Canceled");
    browser.close().await;
}

#[tokio::test]
async fn compare_overlays_three_runs_and_downloads_return_the_artifacts_bytes() {
    let project = TestProject::new();
    project.write("train.py", TRAIN);
    let scales = ["0.2", "0.6", "1.0"];
    let runs: Vec<String> = scales.iter().map(|s| train(&project, s)).collect();
    project
        .xp([
            "-q",
            "history",
            "promote",
            &runs[2],
            "--artifact-path",
            "outputs/model.bin",
            "--name",
            "best-model",
        ])
        .run()
        .success();

    let _one_browser = BROWSER_LOCK.lock().await;
    let ui = UiServer::start(&project, "127.0.0.1");
    let browser = Browser::start().await;
    browser.client.goto(&ui.url).await.unwrap();
    for run in &runs {
        let checkbox = format!("#runs input[value='{run}']");
        browser.click(&checkbox).await;
    }
    browser.click("#compare-button").await;
    browser
        .wait_for(
            "the compare page",
            Duration::from_secs(10),
            "return document.getElementById('compare') !== null;",
        )
        .await;
    let lines = drawn_values(&browser, "figure[data-series='loss']").await;
    assert_eq!(lines.len(), 3, "one curve per run");
    for (run, scale) in runs.iter().zip(scales) {
        let (_, points) = lines
            .iter()
            .find(|(label, _)| label.contains(run.as_str()))
            .unwrap_or_else(|| panic!("no curve for {run}"));
        assert_loss_curve(points, scale.parse().unwrap());
    }
    let legend = browser.text_of("figure[data-series='loss'] ul.legend").await;
    assert_eq!(legend.lines().count(), 3, "{legend}");
    let differing = browser
        .eval("return [...document.querySelectorAll('#compare thead th.differs')].map((h) => h.textContent);")
        .await;
    let differing: Vec<&str> = differing
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(differing.iter().any(|h| h.starts_with("--lr")), "{differing:?}");
    assert!(differing.iter().any(|h| h.starts_with("loss")), "{differing:?}");
    assert!(
        !differing
            .iter()
            .any(|h| h.starts_with("accuracy") || h.starts_with("Script")),
        "{differing:?}"
    );
    browser.screenshot("compare").await;

    // The download link on a run's page returns the artifact's exact bytes.
    browser
        .client
        .goto(&format!("{}/runs/{}", ui.base, runs[1]))
        .await
        .unwrap();
    let href = browser
        .client
        .find(Locator::Css("ul.artifacts a"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(href, format!("/runs/{}/artifacts/outputs/model.bin", runs[1]));
    let reply = http(ui.address, "GET", &href, &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, model_bytes("0.6"));
    assert!(reply.header("content-disposition").unwrap().contains("model.bin"));

    browser.client.goto(&format!("{}/assets", ui.base)).await.unwrap();
    let assets = browser.text_of("main table").await;
    assert!(
        assets.contains("best-model") && assets.contains(&runs[2]) && assets.contains("yes"),
        "{assets}"
    );
    browser.screenshot("assets").await;
    browser.client.goto(&format!("{}/targets", ui.base)).await.unwrap();
    let targets = browser.text_of("main").await;
    assert!(targets.contains("local") && targets.contains("compatible"), "{targets}");
    browser.screenshot("targets").await;
    browser.close().await;
}

#[tokio::test]
async fn the_code_of_a_run_is_listed_shown_and_diffed_in_the_browser() {
    let project = TestProject::new();
    project.write("train.py", TRAIN);
    project.write("README.md", "# Demo\nTrains a tiny model.\n");
    let first = train(&project, "0.1");
    project.write("train.py", &TRAIN.replace("range(30):", "range(30):  # thirty steps"));
    project.write("config.yaml", "lr: 0.2\n");
    let second = train(&project, "0.2");

    let _one_browser = BROWSER_LOCK.lock().await;
    let ui = UiServer::start(&project, "127.0.0.1");
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("{}/runs/{second}", ui.base))
        .await
        .unwrap();
    let files = browser.text_of("#code-files").await;
    assert!(files.contains("train.py") && files.contains("config.yaml"), "{files}");
    browser.screenshot("run-code-card").await;
    browser.click("#code-files a[href$='/code/train.py']").await;
    browser
        .wait_for(
            "the file's page",
            Duration::from_secs(10),
            "return document.getElementById('code-text') !== null;",
        )
        .await;
    let lines = browser
        .eval("return [...document.querySelectorAll('#code-text .line')].map((l) => l.textContent).join('');")
        .await;
    assert_eq!(lines, TRAIN.replace("range(30):", "range(30):  # thirty steps"));
    browser.screenshot("code-file").await;

    browser
        .client
        .goto(&format!("{}/runs/{second}", ui.base))
        .await
        .unwrap();
    browser
        .client
        .find(Locator::Css("#diff-with"))
        .await
        .unwrap()
        .send_keys(&first)
        .await
        .unwrap();
    browser.click("form.diff-form button").await;
    browser
        .wait_for(
            "the diff page",
            Duration::from_secs(10),
            "return document.getElementById('diff-summary') !== null;",
        )
        .await;
    assert!(browser
        .text_of("#diff-summary")
        .await
        .ends_with("1 added, 0 removed, 1 changed"));
    let added = browser
        .eval("return [...document.querySelectorAll('pre.diff .d-add')].map((l) => l.textContent);")
        .await;
    assert!(
        added
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("# thirty steps")),
        "{added}"
    );
    browser.screenshot("code-diff").await;
    browser
        .client
        .goto(&format!("{}/runs/{second}/code", ui.base))
        .await
        .unwrap();
    browser.screenshot("code").await;
    browser.close().await;
}
