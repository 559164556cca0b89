//! Sharded reports: shards computed by separate processes (indices given, or taken from Slurm
//! and Kubernetes variables) merge into exactly the report one run writes; gaps, overlaps and
//! mixed parts are refused with the part named; `--plan` estimates without computing.

mod common;
use common::{synth, synth_llama, synth_llama_with, synth_mixtral};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Scheduler variables a test must not inherit from the machine running it.
const SCHEDULER_VARS: [&str; 5] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_JOB_ID",
    "JOB_COMPLETION_INDEX",
];

/// The binary with `args` and exactly the scheduler variables `env`, with a spectrum cache of
/// its own (returned, to live as long as the run) unless `env` names one.
fn command(args: &[&str], env: &[(&str, &str)]) -> (Command, tempfile::TempDir) {
    let cache = tempfile::tempdir().expect("temp cache dir");
    let mut c = Command::new(env!("CARGO_BIN_EXE_mpscope"));
    c.args(args)
        .env("HF_HUB_CACHE", "/nonexistent-mpscope-cache")
        .env("MPSCOPE_CACHE_DIR", cache.path());
    for v in SCHEDULER_VARS {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    (c, cache)
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let (mut c, _cache) = command(args, env);
    c.output().expect("run mpscope")
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Child, tempfile::TempDir) {
    let (mut c, cache) = command(args, env);
    let child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mpscope");
    (child, cache)
}

fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn refused(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Three shards of `model` (extra `args` for all) computed by three processes at once: shard 0
/// by index, shard 1 as Kubernetes' index 1 of `--shards 3`, shard 2 as Slurm array task 12 of
/// an array 10-12. Returns the part paths.
fn three_shards(model: &Path, out: &Path, args: &[&str]) -> Vec<PathBuf> {
    let parts = three_shards_with(model, out, args, &[]);
    for (_, stderr) in &parts {
        // Not a terminal: no progress bar, nothing at all on stderr.
        assert!(stderr.is_empty(), "{stderr}");
    }
    parts.into_iter().map(|(p, _)| p).collect()
}

/// [`three_shards`] with more environment variables for all three (e.g. a shared spectrum
/// cache); returns each part's path and its stderr.
fn three_shards_with(
    model: &Path,
    out: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Vec<(PathBuf, String)> {
    let parts: Vec<PathBuf> = (0..3).map(|i| out.join(format!("part{i}.json"))).collect();
    let base =
        |i: usize| -> Vec<&str> { [&["report", s(model), "-o", s(&parts[i])], args].concat() };
    let with =
        |vars: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> { [vars, env].concat() };
    let children = vec![
        spawn(&[base(0), vec!["--shard", "0/3"]].concat(), &with(&[])),
        spawn(
            &[base(1), vec!["--shard", "auto", "--shards", "3"]].concat(),
            &with(&[("JOB_COMPLETION_INDEX", "1")]),
        ),
        spawn(
            &[base(2), vec!["--shard", "auto"]].concat(),
            &with(&[
                ("SLURM_JOB_ID", "99"),
                ("SLURM_ARRAY_TASK_ID", "12"),
                ("SLURM_ARRAY_TASK_MIN", "10"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ]),
        ),
    ];
    let mut stderrs = Vec::new();
    for (c, _cache) in children {
        let out = c.wait_with_output().unwrap();
        ok(&out);
        stderrs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    parts.into_iter().zip(stderrs).collect()
}

#[test]
fn shards_from_three_processes_merge_into_the_single_run_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    synth_llama(&model, "L1.k:2x5,q:3");
    let one = run(&["report", s(&model), "--format", "json", "--values"], &[]);
    ok(&one);
    let parts = three_shards(&model, dir.path(), &["--values"]);
    // Each part holds a share of the jobs, with its identity.
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&parts[2]).unwrap()).unwrap();
    assert_eq!(v["shard"]["index"], 2);
    assert_eq!(v["shard"]["count"], 3);
    let plan_jobs = v["shard"]["plan_jobs"].as_u64().unwrap() as usize;
    let held = v["matrices"].as_array().unwrap().len();
    assert!(held > 0 && held < plan_jobs, "{held} of {plan_jobs}");
    // Merged in any order: the single run's bytes.
    let merged = dir.path().join("merged.json");
    ok(&run(
        &[
            "merge",
            s(&parts[2]),
            s(&parts[0]),
            s(&parts[1]),
            "-o",
            s(&merged),
        ],
        &[],
    ));
    assert_eq!(
        String::from_utf8(std::fs::read(&merged).unwrap()).unwrap(),
        String::from_utf8(one.stdout).unwrap()
    );
    // CSV too.
    let csv = run(&["report", s(&model), "--format", "csv"], &[]);
    let merged_csv = run(
        &[
            "merge",
            s(&parts[0]),
            s(&parts[1]),
            s(&parts[2]),
            "--format",
            "csv",
        ],
        &[],
    );
    ok(&merged_csv);
    assert_eq!(merged_csv.stdout, csv.stdout);
}

/// A Mixtral's experts go through shards and `merge` as through one run (the `expert` field
/// in JSON, its CSV column after `head`), and shards may read a spectrum cache another run
/// filled: the merge is still the single run's bytes.
#[test]
fn moe_shards_reading_a_shared_cache_merge_into_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    synth_mixtral(&model, &[]);
    let cache = dir.path().join("cache");
    let shared = [("MPSCOPE_CACHE_DIR", s(&cache))];
    let args = ["--proj", "q,moe", "--values"];
    let one = run(
        &[&["report", s(&model), "--format", "json"], &args[..]].concat(),
        &shared,
    );
    ok(&one);
    let doc: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    let experts = doc["matrices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["expert"].is_u64())
        .count();
    assert_eq!(experts, 2 * 3 * 3, "2 layers × gate, up, down × 3 experts");
    let parts = three_shards_with(&model, dir.path(), &args, &shared);
    for (_, stderr) in &parts {
        assert!(stderr.contains("read from the cache"), "{stderr}");
    }
    let paths: Vec<&str> = parts.iter().map(|(p, _)| s(p)).collect();
    let merged = run(&[&["merge"], &paths[..]].concat(), &[]);
    ok(&merged);
    assert_eq!(
        String::from_utf8(merged.stdout).unwrap(),
        String::from_utf8(one.stdout).unwrap()
    );
    let csv = run(
        &[&["report", s(&model), "--format", "csv"], &args[..]].concat(),
        &[],
    );
    ok(&csv);
    let merged_csv = run(&[&["merge", "--format", "csv"], &paths[..]].concat(), &[]);
    ok(&merged_csv);
    let text = String::from_utf8(merged_csv.stdout).unwrap();
    assert!(
        text.starts_with("tensor,layer,proj,head,expert,rows,cols,"),
        "{text}"
    );
    assert_eq!(text, String::from_utf8(csv.stdout).unwrap());
}

#[test]
fn merge_names_the_missing_shard_and_refuses_overlaps_and_mixtures() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    synth_llama(&model, "q:2");
    let parts = three_shards(&model, dir.path(), &["--no-heads"]);
    let [p0, p1, p2] = [s(&parts[0]), s(&parts[1]), s(&parts[2])];

    refused(&run(&["merge", p0, p2], &[]), "missing shard 1/3");
    refused(&run(&["merge", p0, p1, p1, p2], &[]), "both are shard 1/3");

    // Another option set: sigma fit.
    let fit = dir.path().join("fit1.json");
    let args = [
        "report",
        s(&model),
        "--no-heads",
        "--sigma",
        "fit",
        "--shard",
        "1/3",
    ];
    ok(&run(&[&args[..], &["-o", s(&fit)]].concat(), &[]));
    refused(
        &run(&["merge", p0, s(&fit), p2], &[]),
        "different option sets",
    );

    // Another model of the same shape (another seed): same header, other weights.
    let other = dir.path().join("other");
    synth_llama_with(&other, &["--seed", "9"]);
    let foreign = dir.path().join("foreign1.json");
    let args = [
        "report",
        s(&other),
        "--no-heads",
        "--shard",
        "1/3",
        "-o",
        s(&foreign),
    ];
    ok(&run(&args, &[]));
    refused(
        &run(&["merge", p0, s(&foreign), p2], &[]),
        "different models",
    );

    // Another plan of the same model (heads included).
    let heads = dir.path().join("heads1.json");
    ok(&run(
        &["report", s(&model), "--shard", "1/3", "-o", s(&heads)],
        &[],
    ));
    refused(
        &run(&["merge", p0, s(&heads), p2], &[]),
        "different option sets",
    );

    // Another split of the same plan.
    let half = dir.path().join("half.json");
    ok(&run(
        &[
            "report",
            s(&model),
            "--no-heads",
            "--shard",
            "1/2",
            "-o",
            s(&half),
        ],
        &[],
    ));
    refused(
        &run(&["merge", p0, s(&half), p2], &[]),
        "different shard counts",
    );

    // An interrupted part leaves blocks out.
    let cut = dir.path().join("cut1.json");
    let text = std::fs::read_to_string(p1).unwrap();
    std::fs::write(
        &cut,
        text.replace("\"complete\": true", "\"complete\": false"),
    )
    .unwrap();
    refused(
        &run(&["merge", p0, s(&cut), p2], &[]),
        "is incomplete (its run was interrupted): rerun shard 1/3",
    );

    // A whole report is not a part; nor is any other JSON.
    let whole = dir.path().join("whole.json");
    ok(&run(
        &["report", s(&model), "--no-heads", "-o", s(&whole)],
        &[],
    ));
    refused(&run(&["merge", p0, s(&whole)], &[]), "no `shard` record");
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"hello\": 1}").unwrap();
    refused(
        &run(&["merge", s(&junk)], &[]),
        "not an mpscope shard report",
    );
}

#[test]
fn shard_auto_without_a_scheduler_and_bad_shard_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    synth_llama(dir.path(), "q:2");
    let m = s(dir.path());
    refused(
        &run(&["report", m, "--shard", "auto"], &[]),
        "found neither a Slurm array task",
    );
    refused(
        &run(&["report", m, "--shard", "auto"], &[("SLURM_JOB_ID", "5")]),
        "--array=0-(N-1)",
    );
    refused(
        &run(
            &["report", m, "--shard", "auto"],
            &[("JOB_COMPLETION_INDEX", "0")],
        ),
        "needs --shards N",
    );
    refused(
        &run(
            &["report", m, "--shard", "auto"],
            &[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_MIN", "0"),
                ("SLURM_ARRAY_TASK_COUNT", "2"),
            ],
        ),
        "contiguous",
    );
    refused(&run(&["report", m, "--shard", "3/3"], &[]), "below N");
    refused(
        &run(&["report", m, "--shard", "0/3", "--top", "5"], &[]),
        "--top",
    );
    refused(
        &run(&["report", m, "--shard", "0/3", "--format", "csv"], &[]),
        "shard report is JSON",
    );
    refused(
        &run(&["report", m, "--shards", "3"], &[]),
        "--shards goes with",
    );
}

#[test]
fn plan_estimates_a_sparse_8b_shape_without_reading_weights() {
    let dir = tempfile::tempdir().unwrap();
    // Llama-3.1-8B's shape as headers over a hole: 16 GB on paper, kilobytes on disk.
    synth(dir.path(), &["--preset", "llama-3.1-8b", "--sparse"]);
    let out = run(&["report", s(dir.path()), "--plan", "--shards", "8"], &[]);
    ok(&out);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // 32 layers: q 32 + 32·32 heads, k and v 32 + 32·8 each, o like q, mlp 3·32.
    for (group, jobs) in [
        ("q", 1056),
        ("k", 288),
        ("v", 288),
        ("o", 1056),
        ("mlp", 96),
    ] {
        let row = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(group))
            .unwrap_or_else(|| panic!("no {group} row in\n{text}"));
        assert_eq!(
            row.split_whitespace().nth(1),
            Some(jobs.to_string().as_str()),
            "{row}"
        );
    }
    let all = text.lines().find(|l| l.starts_with("all ")).unwrap();
    assert!(all.contains(" 2784 "), "{all}");
    let shards: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("shards "))
        .skip(1)
        .collect();
    assert_eq!(shards.len(), 2, "{text}");
    assert!(shards[1].starts_with("8 "), "{text}");
}
