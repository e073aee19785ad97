//! What each object did, as numbers: a CloudWatch Embedded Metric Format document per
//! object on stdout in Lambda (CloudWatch turns it into metrics with no API call and
//! no agent), and counters and histograms in Prometheus' text format for the local
//! runner (`bronze run --metrics-addr`).
//!
//! Written by hand rather than through the `metrics` facade and its CloudWatch
//! exporter: a document per object keeps each load's exact figures next to its log
//! line (the exporter aggregates between flushes, which in Lambda must be driven at the
//! end of every invocation), and both formats are a few lines of text.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::store::LoadCounts;

/// How one object ended, as metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its rows are in their table.
    Loaded,
    /// The file was bad.
    Rejected,
    /// Not to be loaded.
    Skipped,
    /// Given up on, for a human.
    Failed,
}

impl Verdict {
    fn metric(self) -> &'static str {
        match self {
            Verdict::Loaded => "ObjectsLoaded",
            Verdict::Rejected => "ObjectsRejected",
            Verdict::Skipped => "ObjectsSkipped",
            Verdict::Failed => "ObjectsFailed",
        }
    }
}

/// One object's figures.
#[derive(Debug, Clone, Default)]
pub struct ObjectFigures<'a> {
    /// `load` or `dispatch`.
    pub function: &'a str,
    /// The tenant, when the key named a valid one.
    pub tenant: Option<&'a str>,
    /// The dataset, when the key named a valid one.
    pub dataset: Option<&'a str>,
    /// How it ended; `None` for a transient failure (retried, not counted).
    pub verdict: Option<Verdict>,
    /// What a load did to its records.
    pub counts: Option<&'a LoadCounts>,
    /// How long the object took in the function.
    pub duration: Duration,
    /// From the object's last modification (its upload) to its load's commit.
    pub lag: Option<Duration>,
    /// The load's quality score.
    pub quality_score: Option<f64>,
}

/// Where metrics go in this process.
#[derive(Debug, Default)]
pub struct Metrics {
    /// The CloudWatch namespace, when EMF documents are printed (in Lambda).
    pub emf_namespace: Option<String>,
    /// The counters `/metrics` serves, when the local runner serves them.
    pub prometheus: Option<Arc<Registry>>,
    /// Whether an invocation was counted already.
    warm: AtomicBool,
}

impl Metrics {
    /// In Lambda (`AWS_LAMBDA_FUNCTION_NAME` set): EMF to stdout, namespace
    /// `BRONZE_METRICS_NAMESPACE` (default `bronze`). Elsewhere: nothing.
    pub fn from_env() -> Self {
        let lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
        Self {
            emf_namespace: lambda.then(|| {
                std::env::var("BRONZE_METRICS_NAMESPACE").unwrap_or_else(|_| "bronze".into())
            }),
            prometheus: None,
            warm: AtomicBool::new(false),
        }
    }

    /// Counters for `/metrics`, shared with the other handler of the process.
    pub fn prometheus(registry: Arc<Registry>) -> Self {
        Self {
            emf_namespace: None,
            prometheus: Some(registry),
            warm: AtomicBool::new(false),
        }
    }

    /// Counts one object, everywhere this process counts.
    pub fn object(&self, figures: &ObjectFigures<'_>) {
        if let Some(namespace) = &self.emf_namespace {
            let document = emf(namespace, figures, SystemTime::now());
            // One line per document, as CloudWatch reads them; a closed stdout is no
            // reason to fail a load.
            let _ = writeln!(std::io::stdout().lock(), "{document}");
        }
        if let Some(registry) = &self.prometheus {
            registry.object(figures);
        }
    }

    /// Counts the process's first invocation, once: a cold start.
    pub fn invoked(&self, function: &str) {
        if self.warm.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(namespace) = &self.emf_namespace {
            let document = json!({
                "_aws": {
                    "Timestamp": millis(SystemTime::now()),
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": [["Function"]],
                        "Metrics": [{"Name": "ColdStart", "Unit": "Count"}],
                    }],
                },
                "Function": function,
                "ColdStart": 1,
            });
            let _ = writeln!(std::io::stdout().lock(), "{document}");
        }
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The EMF document of one object: dimension sets `[Tenant, Dataset]` (when known) and
/// `[Function]`, and one value per metric.
pub fn emf(namespace: &str, f: &ObjectFigures<'_>, at: SystemTime) -> Value {
    let mut values: Vec<(&str, f64, &str)> = Vec::new();
    if let Some(verdict) = f.verdict {
        values.push((verdict.metric(), 1.0, "Count"));
    }
    if let Some(c) = f.counts {
        for (name, n) in [
            ("RecordsIn", c.records_in),
            ("RecordsInserted", c.inserted),
            ("RecordsUpdated", c.updated),
            ("RecordsUnchanged", c.unchanged),
            ("RecordsDeleted", c.deleted),
            ("RecordsRejected", c.rejected),
        ] {
            values.push((name, n as f64, "Count"));
        }
        values.push(("Bytes", c.bytes as f64, "Bytes"));
    }
    values.push((
        "LoadMilliseconds",
        f.duration.as_millis() as f64,
        "Milliseconds",
    ));
    if let Some(lag) = f.lag {
        values.push(("LagMilliseconds", lag.as_millis() as f64, "Milliseconds"));
    }
    if let Some(score) = f.quality_score {
        values.push(("QualityScore", score, "None"));
    }
    let mut dimensions = vec![json!(["Function"])];
    let mut document = Map::new();
    document.insert("Function".into(), json!(f.function));
    if let (Some(tenant), Some(dataset)) = (f.tenant, f.dataset) {
        dimensions.insert(0, json!(["Tenant", "Dataset"]));
        document.insert("Tenant".into(), json!(tenant));
        document.insert("Dataset".into(), json!(dataset));
    }
    let metrics: Vec<Value> = values
        .iter()
        .map(|(name, _, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    for (name, value, _) in &values {
        document.insert((*name).into(), json!(value));
    }
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": millis(at),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimensions,
                "Metrics": metrics,
            }],
        }),
    );
    Value::Object(document)
}

/// Upper bounds of the duration histograms, in seconds.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];

/// Counters and histograms by name and labels, rendered in Prometheus' text format.
#[derive(Debug, Default)]
pub struct Registry {
    series: Mutex<BTreeMap<(String, String), f64>>,
}

impl Registry {
    fn add(&self, name: &str, labels: &str, value: f64) {
        if let Ok(mut series) = self.series.lock() {
            *series
                .entry((name.to_owned(), labels.to_owned()))
                .or_default() += value;
        }
    }

    fn observe(&self, name: &str, labels: &str, seconds: f64) {
        for bound in BUCKETS {
            if seconds <= bound {
                self.add(
                    &format!("{name}_bucket"),
                    &format!("{labels},le=\"{bound}\""),
                    1.0,
                );
            }
        }
        self.add(
            &format!("{name}_bucket"),
            &format!("{labels},le=\"+Inf\""),
            1.0,
        );
        self.add(&format!("{name}_sum"), labels, seconds);
        self.add(&format!("{name}_count"), labels, 1.0);
    }

    fn object(&self, f: &ObjectFigures<'_>) {
        let labels = format!(
            "function=\"{}\",tenant=\"{}\",dataset=\"{}\"",
            f.function,
            f.tenant.unwrap_or(""),
            f.dataset.unwrap_or("")
        );
        if let Some(verdict) = f.verdict {
            let name = match verdict {
                Verdict::Loaded => "bronze_objects_loaded_total",
                Verdict::Rejected => "bronze_objects_rejected_total",
                Verdict::Skipped => "bronze_objects_skipped_total",
                Verdict::Failed => "bronze_objects_failed_total",
            };
            self.add(name, &labels, 1.0);
        }
        if let Some(c) = f.counts {
            for (name, n) in [
                ("bronze_records_in_total", c.records_in),
                ("bronze_records_inserted_total", c.inserted),
                ("bronze_records_updated_total", c.updated),
                ("bronze_records_unchanged_total", c.unchanged),
                ("bronze_records_deleted_total", c.deleted),
                ("bronze_records_rejected_total", c.rejected),
                ("bronze_bytes_total", c.bytes),
            ] {
                self.add(name, &labels, n as f64);
            }
        }
        self.observe(
            "bronze_load_duration_seconds",
            &labels,
            f.duration.as_secs_f64(),
        );
        if let Some(lag) = f.lag {
            self.observe("bronze_lag_seconds", &labels, lag.as_secs_f64());
        }
    }

    /// The text `/metrics` serves.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let Ok(series) = self.series.lock() else {
            return text;
        };
        let mut last = "";
        for ((name, labels), value) in series.iter() {
            let family = name
                .strip_suffix("_bucket")
                .or_else(|| name.strip_suffix("_sum"))
                .or_else(|| name.strip_suffix("_count"))
                .filter(|_| {
                    name.starts_with("bronze_load_duration") || name.starts_with("bronze_lag")
                })
                .unwrap_or(name);
            if family != last {
                let kind = if family == name {
                    "counter"
                } else {
                    "histogram"
                };
                let _ = writeln!(text, "# TYPE {family} {kind}");
                last = family;
            }
            let _ = writeln!(text, "{name}{{{labels}}} {value}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_document_holds_the_exact_figures_under_both_dimension_sets() {
        let counts = LoadCounts {
            records_in: 10,
            inserted: 7,
            updated: 1,
            unchanged: 1,
            deleted: 0,
            rejected: 1,
            bytes: 512,
        };
        let figures = ObjectFigures {
            function: "load",
            tenant: Some("acme"),
            dataset: Some("orders"),
            verdict: Some(Verdict::Loaded),
            counts: Some(&counts),
            duration: Duration::from_millis(1500),
            lag: Some(Duration::from_secs(3)),
            quality_score: Some(0.9),
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let doc = emf("bronze", &figures, at);
        let aws = &doc["_aws"];
        assert_eq!(aws["Timestamp"], 1_800_000_000_000u64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "bronze");
        assert_eq!(
            directive["Dimensions"],
            json!([["Tenant", "Dataset"], ["Function"]])
        );
        for (name, value) in [
            ("ObjectsLoaded", 1.0),
            ("RecordsIn", 10.0),
            ("RecordsInserted", 7.0),
            ("RecordsRejected", 1.0),
            ("Bytes", 512.0),
            ("LoadMilliseconds", 1500.0),
            ("LagMilliseconds", 3000.0),
            ("QualityScore", 0.9),
        ] {
            assert_eq!(doc[name], json!(value), "{name}");
            let declared = directive["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["Name"] == name);
            assert!(declared, "{name} is declared");
        }
        assert_eq!(
            (doc["Tenant"].as_str(), doc["Function"].as_str()),
            (Some("acme"), Some("load"))
        );
    }

    #[test]
    fn prometheus_text_has_counters_and_histograms() {
        let registry = Registry::default();
        let counts = LoadCounts {
            inserted: 2,
            ..LoadCounts::default()
        };
        for _ in 0..2 {
            registry.object(&ObjectFigures {
                function: "load",
                tenant: Some("acme"),
                dataset: Some("orders"),
                verdict: Some(Verdict::Loaded),
                counts: Some(&counts),
                duration: Duration::from_millis(200),
                ..ObjectFigures::default()
            });
        }
        let text = registry.render();
        let labels = "function=\"load\",tenant=\"acme\",dataset=\"orders\"";
        assert!(
            text.contains(&format!("bronze_records_inserted_total{{{labels}}} 4")),
            "{text}"
        );
        assert!(
            text.contains("# TYPE bronze_load_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(&format!("bronze_load_duration_seconds_count{{{labels}}} 2")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "bronze_load_duration_seconds_bucket{{{labels},le=\"0.25\"}} 2"
            )),
            "{text}"
        );
    }
}
