//! The README's decision table is the committed run's, not hand-copied:
//! this test regenerates it from the JSON exports of the run the README
//! links and compares it cell by cell. After a new committed run, point
//! the README at it and paste the table this test prints when it fails.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `results/NAME` of the run the "Which strategy when" section names.
fn linked_run(readme: &str) -> String {
    let section = readme
        .split("## Which strategy when")
        .nth(1)
        .expect("a `## Which strategy when` section in README.md");
    let start = section
        .find("(results/")
        .expect("the section links its run as (results/NAME/REPORT.md)")
        + 1;
    let rest = &section[start..];
    let end = rest
        .find("/REPORT.md")
        .expect("a link to the run's REPORT.md");
    rest[..end].to_owned()
}

fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

fn mib(b: f64) -> String {
    format!("{:.0} MiB", b / f64::from(1u32 << 20))
}

/// A column: its scenario, and a row's cell.
type Column = (&'static str, fn(&Value) -> String);

/// The table, as the README shows it, from the exports in `run`.
fn table(run: &str) -> String {
    let load = |scenario: &str| -> Value {
        let path = root().join(run).join(format!("{scenario}.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    };
    let columns: [Column; 5] = [
        ("fanout", |r| {
            format!(
                "{}, {:.0} µs",
                secs(r["median_s"].as_f64().unwrap()),
                r["cpu_per_request_us"].as_f64().unwrap()
            )
        }),
        ("scale", |r| {
            format!(
                "{}, {}",
                secs(r["median_s"].as_f64().unwrap()),
                mib(r["peak_rss_bytes"].as_f64().unwrap())
            )
        }),
        ("huge", |r| {
            format!(
                "{}, {}",
                secs(r["median_s"].as_f64().unwrap()),
                mib(r["peak_rss_bytes"].as_f64().unwrap())
            )
        }),
        ("overhead", |r| {
            format!(
                "{}, {:.0} µs",
                secs(r["median_s"].as_f64().unwrap()),
                r["cpu_per_request_us"].as_f64().unwrap()
            )
        }),
        ("cancel", |r| {
            format!("{:.1} ms", r["time_to_stop_s"].as_f64().unwrap() * 1000.0)
        }),
    ];
    let exports: Vec<(&str, Value)> = columns.iter().map(|(s, _)| (*s, load(s))).collect();
    let mut out = String::from(
        "| strategy | waiting, 50 in flight (`fanout`: time, CPU/request) | 1,000 in flight \
         (`scale`: time, peak memory) | 10,000 in flight (`huge`) | no waiting (`overhead`: \
         time, CPU/request) | stopping (`cancel`: stop to return) |\n|---|---|---|---|---|---|\n",
    );
    let names: Vec<String> = exports[0]
        .1
        .get("results")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|r| r["strategy"].as_str().unwrap().to_owned())
        .collect();
    for name in names {
        out.push_str(&format!("| {name} |"));
        for ((scenario, cell), (_, export)) in columns.iter().zip(&exports) {
            let row = export["results"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["strategy"] == name.as_str())
                .unwrap_or_else(|| panic!("{name} in {run}/{scenario}.json"));
            let text = if row["skipped"].is_string() {
                "skipped".to_owned()
            } else if row["median_s"].is_null() && row["time_to_stop_s"].is_null() {
                "did not run".to_owned()
            } else {
                cell(row)
            };
            out.push_str(&format!(" [{text}]({run}/{scenario}.md) |"));
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_decision_table_is_the_linked_runs() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let run = linked_run(&readme);
    let want = table(&run);
    assert!(
        readme.contains(&want),
        "README.md's decision table is not the one {run}'s exports give; it should read:\n\n{want}"
    );
}

#[test]
fn every_results_link_in_the_readme_and_findings_exists() {
    for doc in ["README.md", "results/FINDINGS.md", "results/README.md"] {
        let text = std::fs::read_to_string(root().join(doc)).unwrap();
        let base = root().join(doc).parent().unwrap().to_path_buf();
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split('#').next().unwrap_or_default();
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            assert!(
                base.join(target).exists(),
                "{doc} links {target}, which does not exist"
            );
        }
    }
}
