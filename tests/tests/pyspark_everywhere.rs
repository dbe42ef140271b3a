//! `Framework: PySpark` on every target: the same small job, submitted to local, remote,
//! docker, remotedocker and cluster, runs with spark-submit and gets `spark_dependencies.yml`
//! applied (its configuration as `--conf`), with `xp-<run id>` as the application's name when
//! the file names none. Real services only (`scripts/services.sh start docker ssh spark`).

use xp_tests::{service_env, test_image, TestProject};

/// The job: what Spark was given, read back through a Spark session.
const JOB: &str = r#"import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
print("marker", spark.conf.get("spark.xp.marker"))
print("app", spark.sparkContext.appName)
print("args", sys.argv[1:])
spark.stop()
"#;

/// A marker no other run (or test) prints.
fn marker(target: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("xp-{target}-{}-{nanos}", std::process::id())
}

/// Makes `spark` a PySpark run configuration on `target` (unless the target's attach wrote
/// one), writes the job and a Spark file with the marker (and `spark.master: local[1]` for
/// targets without a cluster), submits, and checks the run.
fn submit_the_job(project: &TestProject, target: &str, runconfig: &str, local_master: bool) {
    if runconfig == "spark" {
        project
            .xp([
                "runconfiguration",
                "create",
                "spark",
                "--target",
                target,
                "--framework",
                "PySpark",
                "--force",
            ])
            .run()
            .success();
    }
    assert!(
        project
            .read(&format!("aml_config/{runconfig}.runconfig"))
            .contains("Framework: \"PySpark\""),
        "the run configuration asks for PySpark"
    );
    let marker = marker(target);
    let mut spark_file = format!("configuration:\n  \"spark.xp.marker\": \"{marker}\"\n");
    if local_master {
        spark_file.push_str("  \"spark.master\": \"local[1]\"\n");
    }
    spark_file.push_str("repositories: []\npackages: []\n");
    project.write("aml_config/spark_dependencies.yml", &spark_file);
    project.write("job.py", JOB);

    let run = project
        .xp(["submit", "-c", runconfig, "job.py", "one two"])
        .run()
        .success();
    let record = project.last_record();
    let run_id = record["run_id"].as_str().unwrap().to_owned();
    assert_eq!(record["status"], "Completed", "{record}\n{}", run.stderr);
    for output in [
        run.stdout.clone(),
        project.xp(["history", "logs", &run_id]).run().success().stdout,
    ] {
        assert!(
            output.contains(&format!("marker {marker}")),
            "spark_dependencies.yml's configuration reached Spark on {target}:\n{output}\n{}",
            run.stderr
        );
        assert!(
            output.contains(&format!("app xp-{run_id}")),
            "the application is named after the run on {target}: {output}"
        );
        assert!(output.contains("args ['one two']"), "{output}");
    }
}

#[test]
fn pyspark_on_local_runs_spark_submit_with_the_spark_file() {
    let spark = service_env("spark");
    let project = TestProject::new();
    let compute = project.read("aml_config/local.compute");
    project.write(
        "aml_config/local.compute",
        &format!(
            "{compute}\nsparkSubmitLocation: \"{}\"\n",
            spark["XP_TEST_SPARK_SUBMIT"]
        ),
    );
    submit_the_job(&project, "local", "spark", true);
}

#[test]
fn pyspark_on_remote_runs_spark_submit_with_the_spark_file() {
    let spark = service_env("spark");
    let project = TestProject::new();
    project.attach_over_ssh(
        "remote",
        "r",
        &[
            "--set",
            &format!("sparkSubmitLocation={}", spark["XP_TEST_SPARK_SUBMIT"]),
        ],
    );
    submit_the_job(&project, "r", "spark", true);
}

#[test]
fn pyspark_on_docker_runs_the_images_spark_submit_with_the_spark_file() {
    let image = test_image("XP_TEST_PYSPARK_IMAGE", "xp-test/pyspark:bookworm");
    let project = TestProject::new();
    project
        .xp([
            "computetarget",
            "attach",
            "docker",
            "--name",
            "d",
            "--base-image",
            &image,
        ])
        .run()
        .success();
    submit_the_job(&project, "d", "spark", true);
}

#[test]
fn pyspark_on_remotedocker_runs_the_images_spark_submit_with_the_spark_file() {
    let image = test_image("XP_TEST_PYSPARK_IMAGE", "xp-test/pyspark:bookworm");
    let project = TestProject::new();
    project.attach_over_ssh("remotedocker", "rd", &["--base-image", &image]);
    // The container runs as the host's user, whom the image does not know.
    submit_the_job(&project, "rd", "spark", true);
}

#[test]
fn pyspark_on_the_cluster_runs_spark_submit_with_the_spark_file() {
    let spark = service_env("spark");
    let project = TestProject::new();
    project.attach_over_ssh(
        "cluster",
        "c",
        &[
            "--set",
            &format!("sparkMaster={}", spark["XP_TEST_SPARK_MASTER"]),
            "--set",
            &format!("sparkSubmitLocation={}", spark["XP_TEST_SPARK_SUBMIT"]),
        ],
    );
    // The cluster's attach writes c.runconfig with Framework: PySpark; the master is the target's.
    submit_the_job(&project, "c", "c", false);
}
