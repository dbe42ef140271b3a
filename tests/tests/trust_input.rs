//! Issue 9, item 10: rough edges of input get errors that name the file, the line and what was
//! expected, in the user's words — never an internal type name.

use xp_tests::TestProject;

fn submit_fails(project: &TestProject) -> xp_tests::Finished {
    project.write("ok.py", "print('never')\n");
    let run = project.xp(["submit", "ok.py"]).run();
    assert!(!run.stdout.contains("never"), "{}", run.stdout);
    run
}

#[test]
fn a_byte_order_mark_is_read_as_the_text_it_starts() {
    let project = TestProject::new();
    project.write("ok.py", "print('ran')\n");
    // As a Windows editor saves it: a byte order mark, then CRLF lines.
    for file in ["aml_config/local.runconfig", "aml_config/local.compute"] {
        let text = project.read(file).replace('\n', "\r\n");
        project.write(file, &format!("\u{feff}{text}"));
    }
    let run = project.xp(["submit", "ok.py"]).run().success();
    assert!(run.stdout.contains("ran"), "{}", run.stdout);

    // An error in such a file still names its line.
    let text = project.read("aml_config/local.runconfig");
    project.write("aml_config/local.runconfig", &format!("{text}Framwork: Python\r\n"));
    let lines = text.lines().count() + 1;
    submit_fails(&project).error_mentions(&[&format!("local.runconfig:{lines}"), "Framwork"]);
}

#[test]
fn a_duplicate_key_names_the_line_of_the_second() {
    let project = TestProject::new();
    let text = project.read("aml_config/local.runconfig");
    let lines = text.lines().count() + 1;
    project.write("aml_config/local.runconfig", &format!("{text}Target: \"other\"\n"));
    let run = submit_fails(&project).error_mentions(&[&format!("local.runconfig:{lines}"), "Target", "more than once"]);
    assert!(!run.stderr.contains(":1:1"), "{}", run.stderr);
}

#[test]
fn a_duplicate_setting_of_a_target_is_an_error_too() {
    let project = TestProject::new();
    let text = project.read("aml_config/local.compute");
    let lines = text.lines().count() + 1;
    project.write("aml_config/local.compute", &format!("{text}pythonLocation: python2\n"));
    submit_fails(&project).error_mentions(&[
        &format!("local.compute:{lines}"),
        "`pythonLocation` is given more than once",
    ]);
}

#[test]
fn a_top_level_list_says_a_mapping_was_expected() {
    let project = TestProject::new();
    project.write("aml_config/local.runconfig", "- Target: local\n- Framework: Python\n");
    let run = submit_fails(&project).error_mentions(&["local.runconfig", "a mapping"]);
    assert!(
        !run.stderr.contains("RawRunConfig") && !run.stderr.contains("struct"),
        "{}",
        run.stderr
    );

    project.write(
        "aml_config/local.runconfig",
        "ArgumentVector: [\"$file\"]\nTarget: local\n",
    );
    project.write("aml_config/local.compute", "- type: local\n");
    let run = submit_fails(&project).error_mentions(&["local.compute", "a mapping"]);
    assert!(!run.stderr.contains("struct"), "{}", run.stderr);
}
