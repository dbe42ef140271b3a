//! The runs page of `xp ui` in a real browser while runs are added: a run submitted after the
//! page loaded appears on top and turns Completed without a reload; sorted another way, a note
//! says how many runs are new; an empty page gets its first run in place.

use std::time::Duration;

use xp_tests::browser::{train, Browser, CancelOnDrop, UiServer, TRAIN};
use xp_tests::TestProject;

/// One chromium at a time: the machine has two cores.
static BROWSER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn a_run_submitted_while_the_runs_page_is_open_appears_and_turns_completed_without_a_reload() {
    let project = TestProject::new();
    project.write("train.py", TRAIN);
    let first = train(&project, "0.4");
    project.write(
        "slow.py",
        "import time\nfrom xp_logging import log_metric\nprint('started', flush=True)\nlog_metric('loss', 0.25)\ntime.sleep(3)\nlog_metric('loss', 0.125)\n",
    );

    let _one_browser = BROWSER_LOCK.lock().await;
    let ui = UiServer::start(&project, "127.0.0.1");
    let browser = Browser::start().await;
    browser.client.goto(&ui.url).await.unwrap();
    assert_eq!(browser.text_of("#total").await, "1 run");
    browser.eval("window.sameDocument = 'yes'; return true;").await;

    let submitted = project.xp(["-q", "submit", "-a", "slow.py"]).run().success();
    let run = submitted.stdout.trim().to_owned();
    let _cancel = CancelOnDrop {
        project: &project,
        run: run.clone(),
    };
    let row = format!("#runs tbody tr[data-run='{run}']");
    browser
        .wait_for(
            "the new run's row",
            Duration::from_secs(20),
            &format!("return document.querySelector(\"{row}\") !== null;"),
        )
        .await;
    let order = browser
        .eval("return [...document.querySelectorAll('#runs tbody tr')].map((r) => r.getAttribute('data-run'));")
        .await;
    assert_eq!(order, serde_json::json!([run, first]), "the new run on top");
    assert_eq!(browser.text_of("#total").await, "2 runs");
    assert_eq!(
        browser.text_of(&format!("{row} td.id a")).await,
        run,
        "the row links to its run"
    );
    browser
        .wait_for(
            "the new run Completed, with its last loss",
            Duration::from_secs(60),
            &format!(
                "const r = document.querySelector(\"{row}\"); return r.querySelector('[data-status]').textContent === 'Completed' && r.querySelector(\"td[data-metric='loss']\").textContent === '0.125';"
            ),
        )
        .await;
    assert_eq!(project.run_record(&run)["status"], "Completed");
    assert_eq!(
        browser.eval("return window.sameDocument;").await,
        "yes",
        "the rows changed in place, without a reload"
    );
    browser.screenshot("runs-live").await;

    // Sorted another way, new runs do not move the rows: a note says how many there are.
    browser
        .client
        .goto(&format!("{}/?sort=duration&order=asc", ui.base))
        .await
        .unwrap();
    let before = browser
        .eval("return [...document.querySelectorAll('#runs tbody tr')].map((r) => r.getAttribute('data-run'));")
        .await;
    let third = train(&project, "0.8");
    let note = browser
        .wait_for(
            "the note of one new run",
            Duration::from_secs(20),
            "const n = document.getElementById('new-runs'); return !n.hidden && n.textContent;",
        )
        .await;
    assert!(
        note.as_str().unwrap().starts_with("1 new run since this page loaded"),
        "{note}"
    );
    assert_eq!(
        browser
            .eval("return [...document.querySelectorAll('#runs tbody tr')].map((r) => r.getAttribute('data-run'));")
            .await,
        before,
        "the rows stay as they were"
    );
    browser.click("#new-runs a").await;
    browser
        .wait_for(
            "the newest runs",
            Duration::from_secs(10),
            &format!("const r = document.querySelector('#runs tbody tr'); return r && r.getAttribute('data-run') === '{third}';"),
        )
        .await;
    browser.close().await;
}

#[tokio::test]
async fn the_first_run_of_a_project_appears_on_the_empty_runs_page_without_a_reload() {
    let project = TestProject::new();
    project.write("train.py", TRAIN);
    let _one_browser = BROWSER_LOCK.lock().await;
    let ui = UiServer::start(&project, "127.0.0.1");
    let browser = Browser::start().await;
    browser.client.goto(&ui.url).await.unwrap();
    assert!(browser.text_of("#runs-empty").await.starts_with("No runs yet"));
    browser.eval("window.sameDocument = 'yes'; return true;").await;
    let run = train(&project, "0.5");
    browser
        .wait_for(
            "the first run's row",
            Duration::from_secs(20),
            &format!("return document.querySelector(\"#runs tbody tr[data-run='{run}']\") !== null;"),
        )
        .await;
    assert_eq!(
        browser
            .eval("return [document.getElementById('runs-empty') === null, document.getElementById('compare-form').hidden, window.sameDocument];")
            .await,
        serde_json::json!([true, false, "yes"])
    );
    assert_eq!(browser.text_of("#total").await, "1 run");
    browser.close().await;
}
