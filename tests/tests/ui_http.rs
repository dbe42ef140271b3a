//! `xp ui` over plain HTTP, as an attacker's client would send it (paths exactly as written, no
//! `..` normalised): nothing outside a run's folder is ever served, a non-loopback bind needs
//! the token on every request, cancel needs the token in a header and the server's own origin,
//! and history text is never markup.

use xp_tests::browser::{http, model_bytes, train, wait_for_log, CancelOnDrop, UiServer, TRAIN};
use xp_tests::TestProject;

#[test]
fn urls_that_leave_the_runs_folder_get_404_and_none_of_the_outside_files_bytes() {
    let project = TestProject::new();
    project.write("train.py", TRAIN);
    let run = train(&project, "0.5");
    let secret = "TOP-SECRET-OUTSIDE-BYTES";
    let outside = project.home().join("secret.txt");
    std::fs::write(&outside, secret).unwrap();
    std::fs::write(project.path(".xp/secret.txt"), secret).unwrap();
    let ui = UiServer::start(&project, "127.0.0.1");
    let refused = |path: &str| {
        let reply = http(ui.address, "GET", path, &[]);
        assert_eq!(reply.status, 404, "{path} gave {} {}", reply.status, reply.text());
        assert!(!reply.text().contains(secret), "{path} leaked the outside file");
        assert!(!reply.text().contains("SQLite format"), "{path} leaked the history");
    };
    let good = format!("/runs/{run}/artifacts/outputs/model.bin");
    assert_eq!(http(ui.address, "GET", &good, &[]).body, model_bytes("0.5"));
    for attempt in [
        "../secret.txt",
        "../../secret.txt",
        "outputs/../../secret.txt",
        "outputs/%2e%2e/%2e%2e/secret.txt",
        "%2e%2e/%2e%2e/%2e%2e/home/secret.txt",
        "outputs%2F..%2F..%2Fsecret.txt",
        "outputs/..%2f..%2f..%2fhistory.db",
        "..%5c..%5csecret.txt",
        "%2fetc%2fpasswd",
        "/etc/passwd",
        "outputs/model.bin%00.txt",
        "outputs/./model.bin",
    ] {
        refused(&format!("/runs/{run}/artifacts/{attempt}"));
        refused(&format!("/api/runs/{run}/artifacts/{attempt}"));
    }

    // A link planted in the artifacts folder, under a name the record lists: never followed.
    let artifact = project.path(&format!(".xp/runs/{run}/outputs/model.bin"));
    std::fs::remove_file(&artifact).unwrap();
    std::os::unix::fs::symlink(&outside, &artifact).unwrap();
    refused(&good);
    // The whole outputs folder swapped for a link to a folder with a file of that name.
    let decoy = project.home().join("decoy");
    std::fs::create_dir_all(&decoy).unwrap();
    std::fs::write(decoy.join("model.bin"), secret).unwrap();
    let outputs = project.path(&format!(".xp/runs/{run}/outputs"));
    std::fs::remove_dir_all(&outputs).unwrap();
    std::os::unix::fs::symlink(&decoy, &outputs).unwrap();
    refused(&good);

    // A record edited to list a path outside: the path rules still hold.
    let db = project.path(".xp/history.db");
    let edited = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE runs SET artifacts = '[\\\"../../secret.txt\\\", \\\"../secret.txt\\\"]'\"); c.commit()",
        ])
        .arg(&db)
        .status()
        .unwrap();
    assert!(edited.success());
    refused(&format!("/runs/{run}/artifacts/../../secret.txt"));
    refused(&format!("/runs/{run}/artifacts/..%2F..%2Fsecret.txt"));
    refused(&format!("/runs/{run}/artifacts/../secret.txt"));
}

#[test]
fn a_non_loopback_bind_needs_the_token_on_every_request() {
    let project = TestProject::new();
    project.write("train.py", TRAIN);
    let run = train(&project, "0.5");
    let ui = UiServer::start(&project, "127.0.0.2");
    let token = ui
        .url
        .split("?token=")
        .nth(1)
        .expect("the URL carries the token")
        .to_owned();
    assert_eq!(token.len(), 64);
    let paths = [
        "/".to_owned(),
        "/api/runs".to_owned(),
        format!("/runs/{run}"),
        format!("/runs/{run}/artifacts/outputs/model.bin"),
    ];
    for path in &paths {
        for headers in [
            vec![],
            vec![("Cookie", "xp_token_1=x")],
            vec![("Authorization", "Bearer 0000")],
        ] {
            let reply = http(ui.address, "GET", path, &headers);
            assert_eq!(reply.status, 401, "{path} {headers:?}");
            assert!(!reply.text().contains(&run), "{path} showed run data without the token");
        }
        let wrong = http(ui.address, "GET", &format!("{path}?token={}", "0".repeat(64)), &[]);
        assert_eq!(wrong.status, 401);
    }
    // The printed URL sets a cookie and drops the token from the address.
    let first = http(ui.address, "GET", &format!("/?token={token}"), &[]);
    assert_eq!(first.status, 303);
    assert_eq!(first.header("location"), Some("/"));
    let cookie = first.header("set-cookie").expect("a cookie").to_owned();
    assert!(cookie.contains(&token) && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = http(ui.address, "GET", "/", &[("Cookie", &cookie)]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains(&run));
    let bearer = format!("Bearer {token}");
    let api = http(ui.address, "GET", "/api/runs", &[("Authorization", &bearer)]);
    assert_eq!(api.json()["runs"][0]["run_id"], run.as_str());
    let download = http(
        ui.address,
        "GET",
        &format!("/api/runs/{run}/artifacts/outputs/model.bin?token={token}"),
        &[],
    );
    assert_eq!(download.body, model_bytes("0.5"));
}

#[test]
fn cancel_needs_the_token_in_a_header_and_the_servers_own_origin() {
    let project = TestProject::new();
    project.write(
        "wait.py",
        "import time\nprint('waiting', flush=True)\ntime.sleep(300)\n",
    );
    let submitted = project.xp(["-q", "submit", "-a", "wait.py"]).run().success();
    let run = submitted.stdout.trim().to_owned();
    let _cancel = CancelOnDrop {
        project: &project,
        run: run.clone(),
    };
    wait_for_log(&project, &run, "waiting");
    let ui = UiServer::start(&project, "127.0.0.1");
    let page = http(ui.address, "GET", &format!("/runs/{run}"), &[]).text();
    let token = page
        .split("name=\"xp-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries the token for its script")
        .to_owned();
    let own_origin = ui.base.clone();
    let cancel = format!("/api/runs/{run}/cancel");
    let cookie = format!("xp_token_{}={token}", ui.address.port());
    let evil_host = format!("evil.example:{}", ui.address.port());
    for (what, headers) in [
        ("no Origin", vec![("X-XP-Token", token.as_str())]),
        (
            "a foreign Origin",
            vec![("X-XP-Token", token.as_str()), ("Origin", "http://evil.example")],
        ),
        (
            "the Origin of another port",
            vec![("X-XP-Token", token.as_str()), ("Origin", "http://127.0.0.1:1")],
        ),
        ("no token", vec![("Origin", own_origin.as_str())]),
        (
            "a wrong token",
            vec![("Origin", own_origin.as_str()), ("X-XP-Token", "0000")],
        ),
        (
            "the token in a cookie only",
            vec![("Origin", own_origin.as_str()), ("Cookie", cookie.as_str())],
        ),
        (
            "a rebound Host name",
            vec![
                ("Host", evil_host.as_str()),
                ("Origin", "http://evil.example"),
                ("X-XP-Token", token.as_str()),
            ],
        ),
    ] {
        let reply = http(ui.address, "POST", &cancel, &headers);
        assert_eq!(reply.status, 403, "cancel with {what}: {}", reply.text());
    }
    assert_eq!(
        http(
            ui.address,
            "GET",
            &cancel,
            &[("X-XP-Token", &token), ("Origin", &own_origin)]
        )
        .status,
        405,
        "cancel is POST only"
    );
    assert_eq!(
        project.run_record(&run)["status"],
        "Running",
        "no refused request cancelled the run"
    );
    let reply = http(
        ui.address,
        "POST",
        &cancel,
        &[("X-XP-Token", &token), ("Origin", &own_origin)],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["status"], "Canceled");
    assert_eq!(project.run_record(&run)["status"], "Canceled");
}

#[test]
fn text_from_the_history_is_shown_as_text_never_as_markup() {
    let project = TestProject::new();
    project.write("train.py", TRAIN);
    let markup = "<img src=x onerror=alert(1)>";
    project
        .xp(["-q", "submit", "train.py", "--lr", "0.5", markup])
        .run()
        .success();
    let run = project.last_record()["run_id"].as_str().unwrap().to_owned();
    let ui = UiServer::start(&project, "127.0.0.1");
    for path in [
        "/".to_owned(),
        format!("/runs/{run}"),
        format!("/compare?runs={run},{run}"),
    ] {
        let page = http(ui.address, "GET", &path, &[]);
        assert_eq!(page.status, 200, "{path}");
        let text = page.text();
        assert!(!text.contains(markup), "{path} carries the argument as markup");
        assert!(
            text.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{path} shows the argument as text"
        );
        let policy = page.header("content-security-policy").unwrap_or("");
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
    }
}

#[test]
fn a_bad_address_or_a_busy_port_is_a_clear_error() {
    let project = TestProject::new();
    project
        .xp(["ui", "--host", "example.invalid"])
        .run()
        .error_mentions(&["--host example.invalid", "not an IP address"]);
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    project
        .xp(["ui", "--port", &port])
        .run()
        .error_mentions(&[&format!("127.0.0.1:{port}"), "--port N"]);
}

#[test]
fn a_password_written_into_a_compute_file_by_hand_is_never_served() {
    let project = TestProject::new();
    let password = "hunter2-written-by-hand";
    project.write(
        "aml_config/byhand.compute",
        &format!("type: remote\naddress: host:22\nusername: me\npassword: {password}\n"),
    );
    let ui = UiServer::start(&project, "127.0.0.1");
    for path in ["/api/targets", "/targets"] {
        let reply = http(ui.address, "GET", path, &[]);
        assert_eq!(reply.status, 200, "{path}");
        let text = reply.text();
        assert!(text.contains("byhand"), "{path}: {text}");
        assert!(!text.contains(password), "{path} served the password: {text}");
    }
}
