//! The cluster target: PySpark jobs on a real Spark standalone cluster (master and worker on
//! 127.0.0.1, from the pyspark package) reached through the test sshd, as the shared test
//! setup starts them (`scripts/services.sh start ssh spark`).
//!
//! The cluster has one worker with one core, so the tests take turns.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xp_tests::{make_wheel, service_env, TestProject};

static CLUSTER: Mutex<()> = Mutex::new(());

struct Cluster {
    address: String,
    user: String,
    key: String,
    master: String,
    submit: String,
    ui: String,
}

fn cluster() -> Cluster {
    let ssh = service_env("ssh");
    let spark = service_env("spark");
    Cluster {
        address: format!("{}:{}", ssh["XP_TEST_SSH_HOST"], ssh["XP_TEST_SSH_PORT"]),
        user: ssh["XP_TEST_SSH_USER"].clone(),
        key: ssh["XP_TEST_SSH_KEY"].clone(),
        master: spark["XP_TEST_SPARK_MASTER"].clone(),
        submit: spark["XP_TEST_SPARK_SUBMIT"].clone(),
        ui: spark["XP_TEST_SPARK_UI"].clone(),
    }
}

fn cluster_project(cluster: &Cluster, master: &str) -> TestProject {
    let project = TestProject::new();
    project
        .xp([
            "computetarget",
            "attach",
            "cluster",
            "--name",
            "c",
            "--address",
            &cluster.address,
            "--username",
            &cluster.user,
            "--private-key-file",
            &cluster.key,
            "--set",
            &format!("sparkMaster={master}"),
            "--set",
            &format!("sparkSubmitLocation={}", cluster.submit),
        ])
        .run()
        .success();
    assert!(project
        .read("aml_config/c.runconfig")
        .contains("Framework: \"PySpark\""));
    project
}

/// The master's view of the applications (its web UI's JSON).
fn applications(ui: &str) -> serde_json::Value {
    let host = ui.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("the master's UI answers");
    write!(stream, "GET /json/ HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("the master's JSON: {e}: {body}"))
}

fn app_names(apps: &serde_json::Value, key: &str) -> Vec<String> {
    apps[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

const WORD_COUNT: &str = r#"import os, sys
from pyspark.sql import SparkSession
from azureml.logging import get_azureml_logger

spark = SparkSession.builder.getOrCreate()
sc = spark.sparkContext
words = ["alpha", "beta", "gamma", "beta", "alpha", "alpha"] * 1000
def tag(word):
    import xptiny  # shipped to the executors in the job's Python environment
    return (word + xptiny.SUFFIX, 1)
counts = dict(sc.parallelize(words, 4).map(tag).reduceByKey(lambda a, b: a + b).collect())
total = sc.parallelize(range(1, 100001), 4).sum()
print("counts", sorted(counts.items()))
print("total", total)
print("partitions", spark.conf.get("spark.sql.shuffle.partitions"))
print("greeting", os.environ.get("GREETING"))
get_azureml_logger().log("distinct words", len(counts))
os.makedirs("outputs", exist_ok=True)
with open("outputs/counts.csv", "w") as out:
    for word, count in sorted(counts.items()):
        out.write("%s,%d\n" % (word, count))
spark.stop()
"#;

#[test]
fn a_pyspark_job_runs_on_the_cluster_with_its_environment_and_settings() {
    let _turn = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = cluster();
    let project = cluster_project(&cluster, &cluster.master);
    let wheel = make_wheel(&project.path("wheels"), "xptiny", "0.3", "SUFFIX = '!'\n");
    project.write(
        "aml_config/conda_dependencies.yml",
        &format!("dependencies:\n  - python=3\n  - pip:\n    - ./wheels/{wheel}\n"),
    );
    project.write(
        "aml_config/spark_dependencies.yml",
        "configuration:\n  spark.sql.shuffle.partitions: 5\n",
    );
    let config = project
        .read("aml_config/c.runconfig")
        .replace("\"EXAMPLE_ENV_VAR\": \"Example Value\"", "GREETING: \"hello driver\"");
    project.write("aml_config/c.runconfig", &config);
    project.write("wordcount.py", WORD_COUNT);

    let run = project.xp(["submit", "-c", "c", "wordcount.py"]).run().success();
    assert!(
        run.stdout
            .contains("counts [('alpha!', 3000), ('beta!', 2000), ('gamma!', 1000)]"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("total 5000050000"), "{}", run.stdout);
    assert!(
        run.stdout.contains("partitions 5"),
        "spark_dependencies.yml configuration applies: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("greeting hello driver"),
        "the driver gets the environment variables"
    );
    assert!(
        run.stderr.contains("Building the job's Python environment"),
        "{}",
        run.stderr
    );
    let record = project.last_record();
    assert_eq!(record["status"], "Completed");
    assert_eq!(record["metrics"]["distinct words"], 3);
    assert_eq!(record["artifacts"], serde_json::json!(["outputs/counts.csv"]));
    let run_id = record["run_id"].as_str().unwrap();
    assert_eq!(
        project.read(&format!(".xp/runs/{run_id}/outputs/counts.csv")),
        "alpha!,3000\nbeta!,2000\ngamma!,1000\n"
    );
    let apps = applications(&cluster.ui);
    assert!(
        app_names(&apps, "completedapps").contains(&format!("xp-{run_id}")),
        "the master ran the job: {apps}"
    );

    let again = project.xp(["submit", "-c", "c", "wordcount.py"]).run().success();
    assert!(
        !again.stderr.contains("Building the job's Python environment"),
        "the environment is cached: {}",
        again.stderr
    );
    let prepare = project.xp(["experiment", "prepare", "-c", "c"]).run().success();
    assert!(prepare.stderr.contains("cached"), "{}", prepare.stderr);
}

#[test]
fn ctrl_c_kills_the_spark_application() {
    let _turn = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = cluster();
    let project = cluster_project(&cluster, &cluster.master);
    project.write(
        "slow.py",
        "import time\nfrom pyspark.sql import SparkSession\nsc = SparkSession.builder.getOrCreate().sparkContext\nprint('started', flush=True)\nsc.parallelize(range(2), 2).map(lambda x: time.sleep(600)).collect()\n",
    );
    let mut xp = project.xp(["submit", "-c", "c", "slow.py"]).spawn();
    let mut lines = BufReader::new(xp.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "started");
    let run_id = project.last_record()["run_id"].as_str().unwrap().to_owned();
    let name = format!("xp-{run_id}");
    assert!(app_names(&applications(&cluster.ui), "activeapps").contains(&name));
    unsafe { libc::kill(xp.id() as i32, libc::SIGINT) };
    assert_eq!(xp.wait().unwrap().code(), Some(130));
    assert_eq!(project.last_record()["status"], "Canceled");
    wait_until_finished(&cluster, &name);

    // The same for a detached job and `xp experiment cancel`.
    let run_id = project
        .xp(["submit", "-a", "-c", "c", "slow.py"])
        .run()
        .success()
        .stdout
        .trim()
        .to_owned();
    let name = format!("xp-{run_id}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !app_names(&applications(&cluster.ui), "activeapps").contains(&name) {
        assert!(Instant::now() < deadline, "the detached job never reached the master");
        std::thread::sleep(Duration::from_millis(200));
    }
    project.xp(["experiment", "cancel", &run_id]).run().success();
    assert_eq!(project.run_record(&run_id)["status"], "Canceled");
    wait_until_finished(&cluster, &name);
}

/// Waits until the master lists the application as completed, not running.
fn wait_until_finished(cluster: &Cluster, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let apps = applications(&cluster.ui);
        if !app_names(&apps, "activeapps").iter().any(|a| a == name)
            && app_names(&apps, "completedapps").iter().any(|a| a == name)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the master still shows {name} running: {apps}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn failures_name_their_reason_and_keep_the_drivers_last_output() {
    let _turn = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = cluster();
    let project = cluster_project(&cluster, &cluster.master);
    project.write(
        "fails.py",
        "from pyspark.sql import SparkSession\nsc = SparkSession.builder.getOrCreate().sparkContext\nprint('sum', sc.parallelize(range(10)).sum())\nraise RuntimeError('the job found bad data')\n",
    );
    project.xp(["submit", "-c", "c", "fails.py"]).run().code(1);
    let record = project.last_record();
    assert_eq!(record["status"], "Failed");
    assert!(
        record["error"].as_str().unwrap().contains("the job found bad data"),
        "{record}"
    );

    // Bad Spark settings.
    project.write(
        "aml_config/spark_dependencies.yml",
        "configuration:\n  spark.executor.memory: lots\n",
    );
    project.write(
        "ok.py",
        "from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate()\nprint('never')\n",
    );
    let run = project.xp(["submit", "-c", "c", "ok.py"]).run();
    assert_ne!(run.code, Some(0));
    assert!(!run.stdout.contains("never"));
    let record = project.last_record();
    assert_eq!(record["status"], "Failed");
    assert!(
        record["error"].as_str().unwrap().contains("lots") || record["error"].as_str().unwrap().contains("memory"),
        "{record}"
    );

    // No free workers: the job asks for more cores than any worker has.
    project.write(
        "aml_config/spark_dependencies.yml",
        "configuration:\n  spark.executor.cores: 16\n",
    );
    project.write("count.py", "from pyspark.sql import SparkSession\nprint(SparkSession.builder.getOrCreate().sparkContext.parallelize(range(10)).count())\n");
    project
        .xp(["submit", "-c", "c", "count.py"])
        .run()
        .error_mentions(&["no free workers"]);
    assert_eq!(project.last_record()["status"], "Failed");
    project.write("aml_config/spark_dependencies.yml", "configuration: {}\n");

    // A master nobody answers at.
    let unreachable = cluster_project_unchecked(&cluster, "spark://127.0.0.1:1");
    unreachable.write("ok.py", "print('never')\n");
    unreachable
        .xp(["submit", "-c", "c", "ok.py"])
        .run()
        .error_mentions(&["spark://127.0.0.1:1", "unreachable"]);
    assert_eq!(unreachable.last_record()["status"], "Failed");
}

/// A project whose target's master may not answer: attach checks it, so write the files.
fn cluster_project_unchecked(cluster: &Cluster, master: &str) -> TestProject {
    let project = cluster_project(cluster, &cluster.master);
    let compute = project.read("aml_config/c.compute").replace(&cluster.master, master);
    project.write("aml_config/c.compute", &compute);
    project
}
