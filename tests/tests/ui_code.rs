//! `xp ui` and the code of each run: the files of a run's snapshot listed, one file shown as
//! escaped text or offered as a download, a diff against another run as `xp history diff` has
//! it, and no path from a URL that reaches anything the run's manifest does not list.

use xp_tests::browser::{http, train, UiServer, TRAIN};
use xp_tests::TestProject;

const NOTES: &str = "<script>alert('x')</script> & notes\n";
const BLOB: &[u8] = b"\x00\x01\x02binary\xff";

/// Two runs of one project: the second with train.py edited, notes.txt gone and new.txt added.
fn two_runs(project: &TestProject) -> (String, String) {
    project.write("train.py", TRAIN);
    project.write("notes.txt", NOTES);
    std::fs::write(project.path("data.bin"), BLOB).unwrap();
    let first = train(project, "0.1");
    project.write("train.py", &format!("{TRAIN}print('second version')\n"));
    std::fs::remove_file(project.path("notes.txt")).unwrap();
    project.write("new.txt", "added later\n");
    let second = train(project, "0.2");
    (first, second)
}

#[test]
fn a_runs_files_are_listed_shown_escaped_downloaded_and_diffed() {
    let project = TestProject::new();
    let (first, second) = two_runs(&project);
    let ui = UiServer::start(&project, "127.0.0.1");

    let listed = http(ui.address, "GET", &format!("/api/runs/{first}/code"), &[]).json();
    let files: Vec<(&str, u64)> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "file")
        .map(|e| (e["path"].as_str().unwrap(), e["size"].as_u64().unwrap()))
        .collect();
    assert!(files.contains(&("train.py", TRAIN.len() as u64)), "{files:?}");
    assert!(files.contains(&("notes.txt", NOTES.len() as u64)), "{files:?}");
    assert!(files.contains(&("data.bin", BLOB.len() as u64)), "{files:?}");
    assert!(!files.iter().any(|(p, _)| p.starts_with(".xp")), "{files:?}");

    // The run page lists the files with links to each.
    let run_page = http(ui.address, "GET", &format!("/runs/{first}"), &[]).text();
    assert!(
        run_page.contains(&format!("href=\"/runs/{first}/code/train.py\"")),
        "{run_page}"
    );

    // Text is shown escaped, never as markup; a binary file is offered as a download.
    let notes = http(ui.address, "GET", &format!("/runs/{first}/code/notes.txt"), &[]);
    assert_eq!(notes.status, 200);
    assert!(notes
        .text()
        .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; notes"));
    assert!(!notes.text().contains("<script>alert"));
    let blob = http(ui.address, "GET", &format!("/runs/{first}/code/data.bin"), &[]).text();
    assert!(blob.contains("binary file") && blob.contains(&format!("/api/runs/{first}/code/data.bin")));
    let download = http(ui.address, "GET", &format!("/api/runs/{first}/code/data.bin"), &[]);
    assert_eq!(download.status, 200);
    assert_eq!(download.body, BLOB);
    assert!(download.header("content-disposition").unwrap().contains("data.bin"));
    let source = http(ui.address, "GET", &format!("/api/runs/{second}/code/train.py"), &[]);
    assert!(source.text().ends_with("print('second version')\n"));

    // The diff is what `xp history diff` reports, as JSON and as a page.
    let api = http(ui.address, "GET", &format!("/api/runs/{second}/code?diff={first}"), &[]).json();
    let cli: serde_json::Value = serde_json::from_str(
        &project
            .xp(["history", "diff", &first, &second, "-o", "json"])
            .run()
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(api, cli);
    let changes: Vec<(&str, &str)> = api["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap(), c["change"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changes,
        vec![("new.txt", "added"), ("notes.txt", "removed"), ("train.py", "changed")]
    );
    let page = http(ui.address, "GET", &format!("/runs/{second}/code?diff={first}"), &[]).text();
    assert!(page.contains("1 added, 1 removed, 1 changed"), "{page}");
    assert!(page.contains("<span class=\"d-add\">+print(&#39;second version&#39;)\n</span>"));
    assert!(
        page.contains("<span class=\"d-del\">-&lt;script&gt;"),
        "removed text escaped"
    );
    let unknown = http(ui.address, "GET", &format!("/api/runs/{second}/code?diff=999999"), &[]);
    assert_eq!(unknown.status, 404);
}

#[test]
fn code_urls_that_name_no_file_of_the_manifest_get_404_and_none_of_any_files_bytes() {
    let project = TestProject::new();
    let (first, second) = two_runs(&project);
    let secret = "TOP-SECRET-OUTSIDE-BYTES";
    std::fs::write(project.home().join("secret.txt"), secret).unwrap();
    std::fs::write(project.path(".xp/secret.txt"), secret).unwrap();
    std::fs::write(project.path("secret.txt"), secret).unwrap(); // written after both runs
    let ui = UiServer::start(&project, "127.0.0.1");
    for attempt in [
        "../secret.txt",
        "../../secret.txt",
        "../../../secret.txt",
        "secret.txt",
        ".xp/secret.txt",
        ".xp/history.db",
        "notes.txt",
        "%2e%2e/%2e%2e/secret.txt",
        "..%2F..%2Fsecret.txt",
        "..%5c..%5csecret.txt",
        "%2fetc%2fpasswd",
        "/etc/passwd",
        "%2F..%2F..%2Fsecret.txt",
        "train.py%00.txt",
        "./train.py",
        ".//train.py",
        "new.txt/../../secret.txt",
        "nothing.py",
    ] {
        for (prefix, expected) in [("/api/runs", Some(&b"no such file"[..])), ("/runs", None)] {
            let path = format!("{prefix}/{second}/code/{attempt}");
            let reply = http(ui.address, "GET", &path, &[]);
            assert_eq!(reply.status, 404, "{path} gave {} {}", reply.status, reply.text());
            if let Some(expected) = expected {
                assert_eq!(reply.body, expected, "{path}");
            }
            let text = reply.text();
            assert!(!text.contains(secret), "{path} leaked the outside file");
            assert!(!text.contains("SQLite format"), "{path} leaked the history");
            assert!(!text.contains("root:x:0"), "{path} leaked /etc/passwd");
            assert!(!text.contains("log_metric"), "{path} served train.py");
        }
    }
    // A file removed since the first run is still the first run's.
    let kept = http(ui.address, "GET", &format!("/api/runs/{first}/code/notes.txt"), &[]);
    assert_eq!(kept.body, NOTES.as_bytes());
    // A run without a snapshot, and no such run: 404 too.
    let missing = http(ui.address, "GET", "/api/runs/nosuchrun/code/train.py", &[]);
    assert_eq!((missing.status, missing.body.as_slice()), (404, &b"no such file"[..]));
}

#[test]
fn a_file_whose_name_is_not_utf8_is_linked_shown_and_downloaded_by_its_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let project = TestProject::new();
    project.write("train.py", TRAIN);
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(project.root().join(name), "latin-1 name\n").unwrap();
    let run = train(&project, "0.1");
    let ui = UiServer::start(&project, "127.0.0.1");

    // The link carries the name's bytes, percent-encoded, and leads to the file.
    let href = format!("/runs/{run}/code/caf%E9.txt");
    let code = http(ui.address, "GET", &format!("/runs/{run}/code"), &[]).text();
    assert!(code.contains(&format!("href=\"{href}\"")), "{code}");
    let page = http(ui.address, "GET", &href, &[]);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("latin-1 name"));
    let download = http(ui.address, "GET", &format!("/api/runs/{run}/code/caf%E9.txt"), &[]);
    assert_eq!(download.status, 200);
    assert_eq!(download.body, b"latin-1 name\n");
    // The UTF-8 spelling of the same letters is another name, not in the manifest.
    let other = http(ui.address, "GET", &format!("/api/runs/{run}/code/caf%C3%A9.txt"), &[]);
    assert_eq!(other.status, 404);
    assert_eq!(other.body, b"no such file");
}
